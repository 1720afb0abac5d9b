"""What a package says about its model beyond what training recorded: the user's own words.

Every field left as None is filled when the package is built (zoo.model_cards.metadata): from the trainer for a
model trained on zoo's synthetic data, in neutral words for a model trained on the user's data, and, for the
licence and the authors, with zoo's default and a warning that says so. The values are checked against
bioimage.io (SPDX licence ids, name characters, DOIs) by zoo.packaging.metadata.check_package_config, before
any export work."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from zoo.config.base import StrictConfig
from zoo.errors import InputError

Target = Literal["deepimagej", "bioimageio"]

DEFAULT_LICENSE = "CC-BY-4.0"  # the model licence when none is given (stated in the README and a warning)
DEFAULT_AUTHOR = "zoo user"  # bioimage.io needs an author; named when none is given (with a warning)
DOI_PATTERN = re.compile(r"\b(10\.\d{4,9}/\S+[^\s.,;)\]])")
URL_PATTERN = re.compile(r"https?://\S+[^\s.,;)\]]")


class AuthorConfig(StrictConfig):
    """One author; a plain string is a name."""

    name: str = Field(min_length=1)
    affiliation: str | None = None
    orcid: str | None = None
    github_user: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        return {"name": value.strip()} if isinstance(value, str) else value


class CiteConfig(StrictConfig):
    """One citation: a text with a DOI or URL. A plain string is read for a DOI (10.xxxx/...) or an http(s) URL;
    a string that is only a DOI or URL becomes its own text."""

    text: str = Field(min_length=1)
    doi: str | None = None
    url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        doi = DOI_PATTERN.search(text)
        if doi:
            return {"text": text, "doi": doi.group(1)}
        url = URL_PATTERN.search(text)
        if url:
            return {"text": text, "url": url.group(0)}
        return {"text": text}

    @model_validator(mode="after")
    def _doi_or_url(self) -> CiteConfig:
        if not (self.doi or self.url):
            raise ValueError(f"cite {self.text!r} has neither a DOI nor a URL: give one (e.g. 10.1038/s41592-...)")
        return self


class PackageConfig(StrictConfig):
    """What the package says about the model beyond what training recorded. None: not given (see the module)."""

    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None  # a string is split at commas
    authors: list[AuthorConfig] | None = None  # a string is a name
    license: str | None = None  # SPDX id of the model's licence
    cite: list[CiteConfig] = []  # cited before the paper of the trainer's architecture (always cited)
    documentation: Path | None = None  # Markdown whose text replaces the README's description paragraph
    data_license: str | None = None  # SPDX id of the training data's licence, when it is the user's data
    git_repo: str | None = None
    version: str = "0.1.0"
    target: Target = "deepimagej"

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            return [t.strip() if isinstance(t, str) else t for t in value if not (isinstance(t, str) and not t.strip())]
        return value

    @field_validator("authors", mode="before")
    @classmethod
    def _one_or_many_authors(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value

    @field_validator("cite", mode="before")
    @classmethod
    def _one_or_many_cites(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, (str, dict)) else value

    @classmethod
    def metadata_keys(cls) -> list[str]:
        """The keys a metadata file may hold: every field."""
        return list(cls.model_fields)

    @classmethod
    def from_metadata_file(cls, path: Path | str, **options: Any) -> PackageConfig:
        """The settings in the YAML file `path` (keys: the fields, e.g. name, description, tags, authors, license,
        cite, documentation), with every option in `options` that is given (not None or empty) over them. A
        relative `documentation` path is relative to the file's folder. Problems are one-line InputErrors."""
        from ruyaml import YAML
        from ruyaml.error import YAMLError

        path = Path(path)
        if not path.is_file():
            raise InputError(
                f"metadata file {path} does not exist: give a YAML file with {', '.join(cls.metadata_keys())}"
            )
        try:
            values = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        except (YAMLError, UnicodeDecodeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"metadata file {path} is not readable YAML: {first}") from e
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise InputError(f"metadata file {path} holds a {type(values).__name__}, expected a mapping of keys")
        allowed = cls.metadata_keys()
        unknown = [str(k) for k in values if k not in allowed]
        if unknown:
            raise InputError(f"metadata file {path}: unknown key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")
        documentation = values.get("documentation")
        if isinstance(documentation, str) and documentation.strip():
            values["documentation"] = path.parent / documentation.strip()
        values.update({k: v for k, v in options.items() if given(v)})
        return cls.from_settings(values, source=f"metadata file {path}")

    @classmethod
    def from_settings(cls, values: dict[str, Any], source: str = "package settings") -> PackageConfig:
        """PackageConfig(**values), with a bad value reported as one InputError line naming the key."""
        try:
            return cls(**values)
        except ValidationError as e:
            raise InputError(f"{source}: {one_line(e)}") from e


def given(value: Any) -> bool:
    """Whether an option was given: None, an empty string and an empty list are not."""
    if value is None:
        return False
    if isinstance(value, (str, list, tuple)) and not value:
        return False
    return True


def one_line(error: ValidationError) -> str:
    """The first problem of a pydantic ValidationError as `key: message`, and how many more there are."""
    errors = error.errors()
    first = errors[0]
    location = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{location or 'value'}: {message}{more}"
