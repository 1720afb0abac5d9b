"""FMT: the rdf is a valid bioimage.io description (bioimageio.spec is the judge)."""

from __future__ import annotations

from collections.abc import Iterator

from zoo.bioimage.spec import spec_details, spec_errors
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule


@rule("FMT001", "error", "rdf is readable YAML", "Fix the YAML syntax of the rdf file.", "format", needs="nothing")
def check_rdf_readable(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_rdf_readable.rule
    if pkg.rdf_error:
        yield failed(rule_, pkg.rdf_error, pkg.opened.rdf_path.name)
    else:
        yield passed(rule_, f"{pkg.opened.rdf_path.name} parsed", pkg.opened.rdf_path.name)


@rule(
    "FMT002",
    "error",
    "rdf is a valid bioimage.io model description",
    "Correct the named fields so that bioimageio.spec accepts the rdf.",
    "format",
    needs="rdf",
)
def check_rdf_valid(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_rdf_valid.rule
    if pkg.descr is not None or pkg.other_resource is not None:
        descr = pkg.descr or pkg.other_resource
        yield passed(rule_, f"valid {descr.type} {descr.format_version}")
        return
    if pkg.spec_error:
        yield failed(rule_, pkg.spec_error)
        return
    errors = spec_errors(pkg.invalid)
    if not errors:
        yield failed(rule_, "bioimageio.spec rejected the rdf without naming a field")
    for location, message in errors:
        yield failed(rule_, message, location)


@rule(
    "FMT003",
    "warning",
    "bioimageio.spec has no warnings for the rdf",
    "Follow bioimageio.spec's advice for the named field.",
    "format",
)
def check_rdf_warnings(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_rdf_warnings.rule
    warnings = [(loc, msg) for loc, msg, severity in spec_details(pkg.descr) if severity == "warning"]
    for location, message in warnings:
        yield failed(rule_, message, location)
    if not warnings:
        yield passed(rule_, "no format warnings")


@rule("FMT004", "error", "the resource is a model", "Validate a model rdf (type: model).", "format", needs="rdf")
def check_resource_is_model(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_resource_is_model.rule
    resource_type = pkg.rdf.get("type")
    if resource_type != "model":
        yield failed(rule_, f"type {resource_type!r}, expected 'model'", "type")
    else:
        yield passed(rule_, "type model", "type")
