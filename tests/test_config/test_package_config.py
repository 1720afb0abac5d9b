"""PackageConfig: the user's words for a package, given as options or in a metadata file."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.config import AuthorConfig, CiteConfig, PackageConfig
from zoo.errors import InputError

METADATA = """\
name: Lab HeLa nuclei
description: Segments HeLa nuclei in our spinning-disk images.
tags: [nuclei, hela]
authors:
  - Jane Doe
  - name: Ali Khan
    affiliation: Imaging Facility
    orcid: 0000-0002-1825-0097
license: MIT
cite:
  - 10.5281/zenodo.1234567
  - text: Our lab website
    url: https://example.org/lab
documentation: docs/model.md
data_license: CC-BY-4.0
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_nothing_given_means_none_not_the_trainers_words():
    config = PackageConfig()
    assert config.name is None and config.description is None and config.tags is None
    assert config.authors is None and config.license is None and config.cite == []


def test_options_as_the_cli_gives_them():
    config = PackageConfig(tags="nuclei, hela,,", authors=["Jane Doe"], cite="https://example.org/paper")
    assert config.tags == ["nuclei", "hela"]
    assert config.authors == [AuthorConfig(name="Jane Doe")]
    assert config.cite == [CiteConfig(text="https://example.org/paper", url="https://example.org/paper")]


def test_a_cite_text_with_a_doi_keeps_its_text_and_finds_the_doi():
    cite = CiteConfig.model_validate("Doe et al. Nuclei. Nature (2024). doi:10.1038/s41592-024-0001-x.")
    assert cite.doi == "10.1038/s41592-024-0001-x"
    assert cite.text.startswith("Doe et al.")


def test_a_cite_without_doi_or_url_is_refused():
    with pytest.raises(InputError, match="neither a DOI nor a URL"):
        PackageConfig.from_settings({"cite": ["Doe et al. 2024"]})


def test_metadata_file_round_trip(tmp_path):
    meta = write(tmp_path / "meta.yaml", METADATA)
    config = PackageConfig.from_metadata_file(meta)
    assert config.name == "Lab HeLa nuclei"
    assert config.description == "Segments HeLa nuclei in our spinning-disk images."
    assert config.tags == ["nuclei", "hela"]
    assert [a.name for a in config.authors] == ["Jane Doe", "Ali Khan"]
    assert config.authors[1].affiliation == "Imaging Facility"
    assert config.license == "MIT" and config.data_license == "CC-BY-4.0"
    assert config.cite[0].doi == "10.5281/zenodo.1234567" and config.cite[1].url == "https://example.org/lab"
    assert config.documentation == tmp_path / "docs" / "model.md"  # relative to the file, not the working folder
    # written back as YAML (what a user would keep), it reads the same
    from ruyaml import YAML

    dumped = config.model_dump(mode="json", exclude_none=True)
    again = write(tmp_path / "again.yaml", "")
    YAML(typ="safe").dump(dumped, again)
    assert PackageConfig.from_metadata_file(again) == config


def test_options_given_explicitly_override_the_file(tmp_path):
    meta = write(tmp_path / "meta.yaml", METADATA)
    config = PackageConfig.from_metadata_file(
        meta, name="Other name", license="BSD-3-Clause", tags="a,b", authors=None, description="", cite=[]
    )
    assert config.name == "Other name" and config.license == "BSD-3-Clause" and config.tags == ["a", "b"]
    assert [a.name for a in config.authors] == ["Jane Doe", "Ali Khan"]  # None: not given
    assert config.description.startswith("Segments")  # empty: not given
    assert len(config.cite) == 2


def test_an_unknown_key_is_one_line_naming_it_and_the_allowed_keys(tmp_path):
    meta = write(tmp_path / "meta.yaml", "name: My model\nlicence: MIT\n")
    with pytest.raises(InputError) as caught:
        PackageConfig.from_metadata_file(meta)
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown key 'licence'" in message
    for key in ("name", "description", "tags", "authors", "license", "cite", "documentation"):
        assert key in message.split("allowed keys:")[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags: 5\n", "tags"),
        ("authors:\n  - name: ''\n", "authors"),
        ("- a\n- b\n", "holds a list"),
        ("name: [unclosed\n", "not readable YAML"),
    ],
)
def test_bad_metadata_is_one_line(tmp_path, text, expected):
    meta = write(tmp_path / "meta.yaml", text)
    with pytest.raises(InputError, match=expected) as caught:
        PackageConfig.from_metadata_file(meta)
    assert "\n" not in str(caught.value) and str(meta) in str(caught.value)


def test_a_missing_metadata_file_is_named(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        PackageConfig.from_metadata_file(tmp_path / "nope.yaml")
