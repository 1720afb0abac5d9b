"""What a package says about its model, decided once for the README and the rdf.

- The user's words (PackageConfig fields that are given and differ from the trainer's defaults) always win.
- A model trained on zoo's synthetic data takes the rest from its trainer (name, description, tags: today's
  wording, e.g. "segments fluorescent nuclei").
- A model trained on the user's data (or on data whose provenance was not recorded) gets neutral words: what zoo
  knows of the data (folder name, file count, checksum), never the synthetic data's content (nuclei,
  fluorescence), licence (CC0) or authors.
- The licence and the authors keep zoo's defaults when not given, but never silently: the README says which licence
  was used and why, and `warnings` says it for the caller to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.config import AuthorConfig, PackageConfig
from zoo.config.packaging import DEFAULT_AUTHOR, DEFAULT_LICENSE, given
from zoo.errors import InputError
from zoo.model_cards.facts import training_data_license
from zoo.trainers import TRAINERS, card_for, citation_for, default_package_config
from zoo.trainers.cards import is_synthetic
from zoo.trainers.checkpoint import Checkpoint

NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_+\- ()]+")  # bioimage.io allows letters, digits, _+- () and spaces
NAME_LENGTH = 64  # bioimage.io advises names of at most 64 characters
NAME_MIN_LENGTH = 5  # and refuses names shorter than 5
MAINTAINER_HINT = (
    "bioimage.io accepts an upload only with a maintainer known by a GitHub user name (bioimageio.spec warns "
    "without one): give github_user for an author in a --metadata file"
)
# PackageConfig's defaults before they became "not given": the words of trainers that declare none of their own
UNET2D_WORDS = {
    "name": "zoo U-Net 2D nuclei segmentation",
    "description": "2D U-Net that segments fluorescent nuclei into a foreground probability map; trained and "
    "packaged with zoo.",
    "tags": ["unet", "2d", "segmentation", "nuclei", "fluorescence-light-microscopy", "zoo"],
}
LOCAL_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)")  # Markdown links and images: their targets


@dataclass(frozen=True)
class PackageMetadata:
    """The package's name, description, tags, authors, licence and citations, each as the package states it, with
    why (the notes the README prints) and what the caller should be told (`warnings`)."""

    name: str
    description: str
    tags: list[str]
    authors: list[AuthorConfig]
    license: str
    license_note: str  # why this licence: given by the user, or zoo's default
    authors_given: bool
    cite: list[dict[str, str]]  # the user's citations, then the paper of the trainer's architecture
    documentation: str | None  # the user's Markdown, shown in place of the README's description paragraph
    data_license: str  # SPDX id of the training data's licence, or "unknown"
    data_license_note: str
    user_data: bool  # trained on the user's data (or on data of unrecorded provenance), not zoo's synthetic data
    warnings: tuple[str, ...] = ()


def package_metadata(checkpoint: Checkpoint, config: PackageConfig) -> PackageMetadata:
    """Decide what the package says (see the module). `config` should have passed
    zoo.packaging.metadata.check_package_config; a documentation file that cannot be read is an InputError."""
    data = dict(checkpoint.data or {})
    user_data = not is_synthetic(data)
    trainer_card = card_for(checkpoint.trainer)
    card = trainer_card.for_data(data)
    defaults = _trainer_defaults(checkpoint.trainer)
    warnings: list[str] = []

    def chosen(field: str) -> Any:
        """The config's value when the user gave it: not None, not empty, not the trainer's default."""
        value = getattr(config, field)
        return value if given(value) and value != defaults.get(field) else None

    name = chosen("name") or (_neutral_name(card, data) if user_data else defaults.get("name") or _plain_name(card))
    description = chosen("description")
    if description is None:
        description = _neutral_description(card, data) if user_data else defaults.get("description")
        description = description or f"{card.summary} Trained and packaged with zoo."
    user_tags = chosen("tags") or []
    trainer_tags = defaults.get("tags") or [t for t in ("zoo", _slug(card.task)) if t]
    if user_data:
        trainer_tags = [t for t in trainer_tags if t.lower() not in trainer_card.data_tags()]
        if chosen("description") is None and not user_tags and config.documentation is None:
            folder = _folder_name(data)
            warnings.append(
                f"the model was trained on your own data{f' (folder {folder})' if folder else ''}: zoo does not know "
                "what it shows, so the description and tags say only that; pass --description and --tags to "
                "describe it"
            )
    tags = list(dict.fromkeys([*user_tags, *trainer_tags]))

    license_id, license_note = _license(config, user_data, warnings)
    authors = _authors(config, warnings)

    if config.data_license and not user_data:
        warnings.append(
            f"data_license {config.data_license} ignored: the model was trained on zoo's synthetic data (CC0-1.0)"
        )
    data_license, data_license_note = training_data_license(data, config.data_license)

    documentation = _read_documentation(config.documentation, warnings)
    return PackageMetadata(
        name=name,
        description=description,
        tags=tags,
        authors=authors,
        license=license_id,
        license_note=license_note,
        authors_given=bool(config.authors),
        cite=_citations(config, checkpoint),
        documentation=documentation,
        data_license=data_license,
        data_license_note=data_license_note,
        user_data=user_data,
        warnings=tuple(warnings),
    )


def foreign_name(config: PackageConfig, source_name: str) -> str:
    """The user's name, else one made from the model's file or class name (at least bioimage.io's 5 characters)."""
    if given(config.name):
        return config.name
    stem = NAME_CHARACTERS.sub("-", Path(source_name).stem).strip("- ") or "model"
    if len(stem) < NAME_MIN_LENGTH:
        stem = f"{stem} model"
    return stem[:NAME_LENGTH]


def foreign_metadata(config: PackageConfig, source_name: str, summary: str) -> PackageMetadata:
    """What a package of a model zoo did not train says: the user's words, else a name from the model's file and a
    description that says what zoo measured (`summary`) and that training was not recorded; licence and authors as
    for the user's own data (defaults never silent)."""
    warnings: list[str] = []
    name = foreign_name(config, source_name)
    description = (
        config.description
        if given(config.description)
        else (f"{summary} Packaged with zoo from the file {source_name}; how it was trained was not recorded.")
    )
    if not given(config.description) and config.documentation is None:
        warnings.append(
            f"zoo does not know what {source_name} was trained for: pass --description and --tags to say what the "
            "model does and on which images"
        )
    license_id, license_note = _license(config, True, warnings)
    authors = _authors(config, warnings)
    if not config.cite:
        warnings.append("no --cite given: bioimage.io asks for the paper or DOI of the model; pass --cite")
    documentation = _read_documentation(config.documentation, warnings)
    return PackageMetadata(
        name=name,
        description=description,
        tags=list(dict.fromkeys([*(config.tags if given(config.tags) else []), "zoo"])),
        authors=authors,
        license=license_id,
        license_note=license_note,
        authors_given=bool(config.authors),
        cite=[c.model_dump(exclude_none=True) for c in config.cite],
        documentation=documentation,
        data_license=config.data_license or "unknown",
        data_license_note="given by the authors" if config.data_license else "not recorded",
        user_data=True,
        warnings=tuple(warnings),
    )


def _license(config: PackageConfig, user_data: bool, warnings: list[str]) -> tuple[str, str]:
    if config.license:
        license_id = config.license
        license_note = "chosen by the authors when the package was built"
    else:
        license_id = DEFAULT_LICENSE
        license_note = "zoo's default, as no licence was given when the package was built (--license); " + (
            "zoo does not know the licence of the training data, so check that it allows this one"
            if user_data
            else "the synthetic training data is zoo's own (CC0-1.0)"
        )
        warnings.append(
            f"no --license given: the package is licensed {DEFAULT_LICENSE} (zoo's default)"
            + (
                "; zoo does not know the licence of the data the model was trained on: pass --license with a "
                "licence that the data allows"
                if user_data
                else "; pass --license to choose another"
            )
        )

    return license_id, license_note


def _authors(config: PackageConfig, warnings: list[str]) -> list[AuthorConfig]:
    authors = list(config.authors or [])
    if not authors:
        authors = [AuthorConfig(name=DEFAULT_AUTHOR)]
        warnings.append(
            f"no --author given: the package names {DEFAULT_AUTHOR!r} as its author (bioimage.io needs one); pass "
            f"--author with your name, and {MAINTAINER_HINT}"
        )
    elif not any(a.github_user for a in authors):
        warnings.append(f"no author has a GitHub user name: {MAINTAINER_HINT}")
    return authors


def _trainer_defaults(trainer: str) -> dict[str, Any]:
    """The trainer's own package wording (name, description, tags); for a registered trainer that has none (the
    Keras U-Net) the words PackageConfig had as its defaults before; {} for a trainer that is not registered."""
    if trainer not in TRAINERS:
        return {}
    defaults = default_package_config(trainer)
    words = {k: getattr(defaults, k) for k in ("name", "description", "tags") if getattr(defaults, k) is not None}
    return words or dict(UNET2D_WORDS)


def _citations(config: PackageConfig, checkpoint: Checkpoint) -> list[dict[str, str]]:
    """The user's citations, then the trainer's paper (once: a citation with the same DOI or URL is not repeated)."""
    entries = [c.model_dump(exclude_none=True) for c in config.cite]
    entries.append(citation_for(checkpoint.trainer, checkpoint.architecture).as_dict())
    seen: set[str] = set()
    unique = []
    for entry in entries:
        key = (entry.get("doi") or entry.get("url") or entry["text"]).lower()
        if key not in seen:
            seen.add(key)
            unique.append(entry)
    return unique


def _read_documentation(path: Path | None, warnings: list[str]) -> str | None:
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"--documentation {path} cannot be read as UTF-8 text: {e}") from e
    local = [
        target
        for target in LOCAL_LINK.findall(text)
        if not target.startswith(("http://", "https://", "mailto:", "#", "doi:"))
    ]
    if local:
        warnings.append(
            f"--documentation {Path(path).name} links to {', '.join(dict.fromkeys(local))}: only its text is "
            "shipped, so these links will be broken in the package"
        )
    return text


def _folder_name(data: dict[str, Any]) -> str:
    return Path(str(data.get("folder", ""))).name


def _neutral_name(card, data: dict[str, Any]) -> str:
    """A name that says what the model is and, for the user's folder, which folder it learnt from."""
    base = _plain_name(card)
    folder = NAME_CHARACTERS.sub("-", _folder_name(data)).strip("- ")
    if not folder:
        return base
    room = NAME_LENGTH - len(base) - len(" trained on ")
    return f"{base} trained on {folder[:room]}".strip() if room >= 5 else base


def _plain_name(card) -> str:
    task = (
        card.task if card.task[:8].lower() not in card.architecture.lower() else ""
    )  # not "classifier classification"
    words = " ".join(w for w in ("zoo", card.architecture, task) if w)
    return NAME_CHARACTERS.sub("-", words).strip() if words != "zoo" else f"zoo {card.trainer} model"


def _neutral_description(card, data: dict[str, Any]) -> str:
    """The card's summary and what zoo knows of the user's data: how many files, from which folder."""
    folder = _folder_name(data)
    if data.get("source") == "folder":
        files = f"{data.get('n_files', '?')} {data.get('files_kind', 'training images')}"
        origin = f"the user's own data ({files} from the folder `{folder}`)" if folder else f"the user's own {files}"
    else:
        origin = "data whose origin was not recorded"
    return f"{card.summary} Trained and packaged with zoo on {origin}; what the images show was not described."


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
