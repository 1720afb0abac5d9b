"""The user's words for a package checked against bioimage.io before any export work: each problem is one
InputError line naming the option, the value and what would do (never bioimage.io's whole SPDX list)."""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import get_args

from zoo.config import PackageConfig
from zoo.config.packaging import one_line
from zoo.errors import InputError

SPDX_URL = "https://spdx.org/licenses"
EXAMPLE_LICENSES = ("CC-BY-4.0", "MIT", "BSD-3-Clause")
NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+- ()")
NAME_LENGTH = (5, 128)  # bioimage.io's limits for a model name
DESCRIPTION_LENGTH = 512  # bioimageio.spec warns above 512 characters (and refuses above 1024)
DOCUMENTATION_BYTES = 1_000_000


@lru_cache(maxsize=1)
def spdx_licence_ids() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(current, deprecated) SPDX licence ids, as the installed bioimageio.spec knows them."""
    from bioimageio.spec.model.v0_5 import DeprecatedLicenseId, LicenseId

    def ids(validated) -> tuple[str, ...]:
        return tuple(get_args(validated.root_model.model_fields["root"].annotation))

    return ids(LicenseId), ids(DeprecatedLicenseId)


def check_license(value: str, option: str = "--license") -> str:
    """`value` as bioimage.io's SPDX id (its canonical spelling: ids match without regard to case), or an
    InputError line with at most three close ids."""
    text = str(value).strip()
    current, deprecated = spdx_licence_ids()
    by_lower = {i.lower(): i for i in current}
    if text.lower() in by_lower:
        return by_lower[text.lower()]
    close = [by_lower[m] for m in difflib.get_close_matches(text.lower(), list(by_lower), n=3, cutoff=0.6)]
    if text.lower() in {i.lower() for i in deprecated}:
        successors = [i for i in current if i.lower().startswith(text.lower())][:3] or close
        raise InputError(
            f"{option} {text} is a deprecated SPDX licence id; e.g. {', '.join(successors or EXAMPLE_LICENSES)} "
            f"(see {SPDX_URL})"
        )
    raise InputError(
        f"{option} {text or '(empty)'} is not an SPDX licence id; e.g. {', '.join(close or EXAMPLE_LICENSES)} "
        f"(see {SPDX_URL})"
    )


def check_package_config(config: PackageConfig | dict) -> PackageConfig:
    """`config` (a PackageConfig, or its settings) with its licence ids in canonical spelling, or an InputError
    line for the first value bioimage.io would refuse or warn about: licence ids, name, description length,
    authors (ORCID), citations (DOI, URL), git_repo and the documentation file. Cheap (no model, no network): call
    it before anything else; build_package calls it first."""
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model import v0_5
    from pydantic import ValidationError

    if not isinstance(config, PackageConfig):
        config = PackageConfig.from_settings(dict(config or {}))

    update = {}
    if config.license is not None:
        update["license"] = check_license(config.license)
    if config.data_license is not None:
        update["data_license"] = check_license(config.data_license, "data_license")
    if config.name is not None:
        _check_name(config.name)
    if config.description is not None and len(config.description) > DESCRIPTION_LENGTH:
        raise InputError(
            f"--description has {len(config.description)} characters, bioimage.io advises at most "
            f"{DESCRIPTION_LENGTH}: put the longer text in --documentation"
        )
    if config.description is not None and not config.description.strip():
        raise InputError("--description is empty: describe the model in a sentence or leave it out")
    for tag in config.tags or []:
        if not isinstance(tag, str) or not tag.strip():
            raise InputError("--tags has an empty tag: give tags separated by commas, e.g. nuclei,fluorescence")
    with ValidationContext(perform_io_checks=False):  # no network: DOIs and URLs are checked for form only
        for author in config.authors or []:
            try:
                v0_5.Author(**author.model_dump(exclude_none=True))
            except ValidationError as e:
                raise InputError(f"--author {author.name!r}: {one_line(e)}") from e
        for cite in config.cite:
            try:
                v0_5.CiteEntry(**cite.model_dump(exclude_none=True))
            except ValidationError as e:
                raise InputError(f"--cite {cite.text!r}: {one_line(e)}") from e
    if config.git_repo is not None and not config.git_repo.startswith(("http://", "https://")):
        raise InputError(f"git_repo {config.git_repo!r} is not an http(s) URL: give the repository's web address")
    if config.documentation is not None:
        _check_documentation(Path(config.documentation))
    return config.model_copy(update=update) if update else config


def _check_name(name: str) -> None:
    bad = sorted(set(name) - NAME_CHARACTERS)
    if bad:
        raise InputError(
            f"--name {name!r} has characters bioimage.io does not allow in a name ({' '.join(bad)}): use letters, "
            "digits, spaces and _+-()"
        )
    low, high = NAME_LENGTH
    if not low <= len(name.strip()) <= high:
        raise InputError(f"--name {name!r} has {len(name.strip())} characters, bioimage.io needs {low} to {high}")


def _check_documentation(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"--documentation {path} is not a file: give a Markdown (.md) file")
    if path.stat().st_size > DOCUMENTATION_BYTES:
        raise InputError(f"--documentation {path} has {path.stat().st_size} bytes: give a Markdown text under 1 MB")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"--documentation {path} cannot be read as UTF-8 text: {e}") from e
    if not text.strip():
        raise InputError(f"--documentation {path} is empty: give the Markdown that describes the model")
