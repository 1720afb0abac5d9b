"""DIJ01..DIJ32: for every rule one package that breaks it and one that satisfies it, built from the session's
tiny zoo package; then the two real models and the zoo's own package."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

import zoo.validators.checks  # noqa: F401  (registers the rules)
from tests.conftest import copy_real_model, load_rdf, zip_folder
from tests.test_validators.deepimagej_packages import (
    TF_ZIP,
    add_tf_2_13_additions,
    dij_report,
    edit_rdf,
    edit_saved_model,
    problems,
    rewrite_zip,
    set_scalar_text,
    statuses,
)
from zoo.validators import RULES, validate_source

DIJ_IDS = [f"DIJ{n:02d}" for n in range(1, 33)]


@pytest.fixture(scope="module")
def zoo_report(tiny_package):
    return dij_report(tiny_package)


def test_every_rule_is_registered_for_deepimagej():
    for rule_id in DIJ_IDS:
        rule_ = RULES[rule_id]
        assert (rule_.stage, rule_.target, rule_.needs) == ("deepimagej", "deepimagej", "rdf"), rule_id
        assert rule_.severity in ("error", "wrong", "risk"), rule_id
    assert sorted(r for r in RULES if r.startswith("DIJ")) == DIJ_IDS


@pytest.mark.parametrize("rule_id", DIJ_IDS)
def test_zoo_package_satisfies(zoo_report, rule_id):
    assert statuses(zoo_report, rule_id) == {"passed"}, [f.message for f in zoo_report.by_id(rule_id)]


# ------------------------------------------------------------------------------------------ reading the package
def test_dij01_descriptor_named_otherwise(package_folder, tmp_path):
    folder = package_folder()
    (folder / "rdf.yaml").rename(folder / "bioimageio.yaml")
    [finding] = problems(dij_report(folder), "DIJ01")
    assert finding.details == {"file_name": "bioimageio.yaml", "expected": "rdf.yaml"}
    [in_zip] = problems(dij_report(zip_folder(folder, tmp_path / "renamed.zip")), "DIJ01")
    assert in_zip.details["file_name"] == "bioimageio.yaml"


def test_dij01_rdf_yaml_at_root(zoo_report):
    assert [f.details["file_name"] for f in zoo_report.by_id("DIJ01")] == ["rdf.yaml"]


def test_dij02_unquoted_format_version_is_a_float(package_folder):
    folder = package_folder()
    set_scalar_text(folder, "format_version", "0.5", top_level=True)
    [finding] = problems(dij_report(folder), "DIJ02")
    assert finding.details == {"format_version": 0.5, "yaml_type": "float"}


def test_dij02_unquoted_format_version_through_validate_source(package_folder):
    folder = package_folder()
    set_scalar_text(folder, "format_version", "0.5", top_level=True)
    report = validate_source(folder, isolate=False)
    assert statuses(report, "DIJ02") == {"failed"}
    assert statuses(report, "FMT002") == {"failed"}  # bioimageio.spec raised: reported, not a traceback


def test_dij02_quoted_format_version(zoo_report):
    [finding] = zoo_report.by_id("DIJ02")
    assert finding.details["yaml_type"] == "str" and finding.details["format_version"].startswith("0.5")


def test_dij03_documentation_mapping_and_no_id(package_folder):
    folder = package_folder()

    def spec_0_5_12_style(rdf):
        rdf["documentation"] = {"source": "README.md", "sha256": "0" * 64}
        rdf.pop("id", None)

    edit_rdf(folder, spec_0_5_12_style)
    found = {f.details["field"]: f.details["yaml_type"] for f in problems(dij_report(folder), "DIJ03")}
    assert found == {"documentation": "dict", "id": "NoneType"}


def test_dij03_non_string_license_and_missing_outputs(package_folder):
    folder = package_folder()

    def break_it(rdf):
        rdf["license"] = ["MIT"]
        del rdf["outputs"]

    edit_rdf(folder, break_it)
    found = {f.details["field"]: f.details["yaml_type"] for f in problems(dij_report(folder), "DIJ03")}
    assert found == {"license": "list", "outputs": "NoneType"}


def test_dij03_text_fields_and_id(zoo_report):
    assert statuses(zoo_report, "DIJ03") == {"passed"}


def test_dij04_weight_file_missing_or_remote(package_folder):
    folder = package_folder()
    (folder / "weights_torchscript.pt").unlink()
    edit_rdf(folder, lambda rdf: rdf["weights"]["onnx"].update(source="https://example.invalid/weights.onnx"))
    found = {f.location: f.details["source"] for f in problems(dij_report(folder), "DIJ04")}
    assert found == {
        "weights.torchscript": "weights_torchscript.pt",
        "weights.onnx": "https://example.invalid/weights.onnx",
    }


def test_dij04_weight_files_present(zoo_report):
    [finding] = zoo_report.by_id("DIJ04")
    # the state dict beside TorchScript and ONNX is never loaded by deepImageJ (DIJ14): not counted
    assert finding.status == "passed" and finding.details == {"files": 3, "not_used": ["pytorch_state_dict"]}


def test_dij04_only_weights_deepimagej_uses_matter(package_folder):
    """A state dict only at a URL beside local TorchScript and ONNX: deepImageJ never loads it, so it runs."""
    folder = package_folder()
    (folder / "weights.pt").unlink()
    edit_rdf(
        folder, lambda rdf: rdf["weights"]["pytorch_state_dict"].update(source="https://example.invalid/weights.pt")
    )
    report = dij_report(folder)
    [finding] = report.by_id("DIJ04")
    assert finding.status == "passed" and finding.details["not_used"] == ["pytorch_state_dict"]
    assert report.deepimagej_verdict in ("runs", "runs with risks")


def test_dij04_state_dict_of_format_0_4_is_never_used(tmp_path):
    """Format 0.4: deepImageJ runs no pytorch_state_dict, so its absence says nothing; the TorchScript counts."""
    (tmp_path / "rdf.yaml").write_text(
        RDF_V04.replace("AXES", "bcyx").replace(
            "weights:\n", "weights:\n  torchscript: {source: weights_torchscript.pt, pytorch_version: '1.13'}\n"
        )
    )
    np.save(tmp_path / "test_input.npy", np.ones((1, 1, 64, 64), np.float32))
    (tmp_path / "weights_torchscript.pt").write_bytes(b"not read by DIJ04")
    [finding] = dij_report(tmp_path).by_id("DIJ04")
    assert finding.status == "passed" and finding.details == {"files": 1, "not_used": ["pytorch_state_dict"]}


def test_lone_rdf_cannot_be_judged(package_folder, tmp_path):
    """The rdf without any file it names (weights, test tensors): the rules that read files cannot judge, and the
    verdict says so instead of "will not run"."""
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "rdf.yaml").write_bytes((package_folder() / "rdf.yaml").read_bytes())
    report = dij_report(lone / "rdf.yaml")
    assert not [f for f in report.findings if f.status == "failed"], [(f.id, f.message) for f in report.findings]
    judged_nothing = {f.id for f in report.findings if (f.details or {}).get("cannot_judge")}
    assert {"DIJ04", "DIJ07", "DIJ11", "DIJ13", "DIJ32"} <= judged_nothing
    [dij04] = report.by_id("DIJ04")
    assert set(dij04.details["missing"]) == {"weights_torchscript.pt", "weights.onnx", TF_ZIP}
    assert report.deepimagej_verdict == "cannot judge"
    assert report.verdict("deepimagej").status == "not verified"


def test_lone_rdf_still_fails_what_the_text_proves(package_folder, tmp_path):
    """A rule the rdf text breaks (an unquoted format_version) is a proof: it wins over "cannot judge"."""
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "rdf.yaml").write_bytes((package_folder() / "rdf.yaml").read_bytes())
    set_scalar_text(lone, "format_version", "0.5", top_level=True)
    report = dij_report(lone / "rdf.yaml")
    assert statuses(report, "DIJ02") == {"failed"}
    assert report.deepimagej_verdict == "will not run"


def test_dij32_no_test_or_sample_input(package_folder):
    folder = package_folder()
    (folder / "test_input.npy").unlink()
    (folder / "sample_input.tif").unlink()
    [finding] = problems(dij_report(folder), "DIJ32")
    assert finding.status == "warning"
    assert finding.details == {"named": ["test_input.npy", "sample_input.tif"]}


def test_dij32_sample_alone_is_enough(package_folder):
    folder = package_folder()
    (folder / "test_input.npy").unlink()
    assert statuses(dij_report(folder), "DIJ32") == {"passed"}


# ------------------------------------------------------------------------------------------ weights and engines
def test_dij05_no_runnable_format(package_folder):
    folder = package_folder()
    edit_rdf(
        folder, lambda rdf: rdf.update(weights={"keras_hdf5": {"source": "weights.h5", "tensorflow_version": "2.10.0"}})
    )
    [finding] = problems(dij_report(folder), "DIJ05")
    assert finding.details == {"formats": ["keras_hdf5"], "runnable": []}


def test_dij05_no_engine_for_the_major_version(package_folder):
    folder = package_folder()
    edit_rdf(folder, lambda rdf: rdf["weights"]["torchscript"].update(pytorch_version="3.1.0"))
    [finding] = problems(dij_report(folder), "DIJ05")
    assert finding.details == {"format": "torchscript", "declared": "3.1.0", "engine": None}


def test_dij05_tf_weights_that_tf_2_7_cannot_load(package_folder):
    folder = package_folder()
    edit_saved_model(folder, add_tf_2_13_additions)
    [finding] = problems(dij_report(folder), "DIJ05")
    assert finding.location == "weights.tensorflow_saved_model_bundle"
    assert "DisableCopyOnRead" in finding.details["reason"]


def test_dij05_engines_fiji_picks(zoo_report):
    [finding] = zoo_report.by_id("DIJ05")
    assert finding.status == "passed"
    assert finding.details["engines"] == {
        "onnx": "onnx opset 17 (onnxruntime 1.12.1)",
        "pytorch_state_dict": "deepImageJ's Python environment",
        "tensorflow_saved_model_bundle": "tensorflow 2.7.0",
        "torchscript": "pytorch 2.0.0",
    }


def test_dij06_blocklisted_id(package_folder):
    folder = package_folder()
    edit_rdf(folder, lambda rdf: rdf.update(id="polite-pig"))
    [finding] = problems(dij_report(folder), "DIJ06")
    assert finding.details == {"model_id": "polite-pig"}


def test_dij06_id_not_blocklisted(zoo_report):
    [finding] = zoo_report.by_id("DIJ06")
    assert finding.status == "passed" and finding.details["model_id"]  # the zoo writes an id (DIJ03)


def _torchscript_version(folder, version: bytes) -> None:
    rewrite_zip(
        folder / "weights_torchscript.pt", lambda name, data: (name, version if name.endswith("/version") else data)
    )


def test_dij07_archive_newer_than_libtorch_2_0(package_folder):
    folder = package_folder()
    _torchscript_version(folder, b"11\n")
    report = dij_report(folder)
    [finding] = problems(report, "DIJ07")
    assert finding.status == "warning"
    assert (finding.details["file_format_version"], finding.details["max_file_format_version"]) == (11, 10)
    [unloadable] = problems(report, "DIJ05")
    assert unloadable.details["format"] == "torchscript" and "version 11" in unloadable.details["reason"]


def test_dij07_operator_libtorch_2_0_is_not_known_to_have(package_folder):
    folder = package_folder()
    rewrite_zip(
        folder / "weights_torchscript.pt",
        lambda name, data: (name, data),
        add={"weights_torchscript/code/__torch__/extra.py": b"def f(x):\n  return torch.rms_norm(x, [4])\n"},
    )
    [finding] = problems(dij_report(folder), "DIJ07")
    assert finding.details["unknown_ops"] == ["aten::rms_norm"]
    assert finding.details["engine"] == "pytorch 2.0.0"


def test_dij07_settled_from_the_archive(zoo_report):
    import torch

    [finding] = zoo_report.by_id("DIJ07")
    assert finding.status == "passed"
    assert {k: v for k, v in finding.details.items() if k != "ops"} == {
        "engine": "pytorch 2.0.0",
        "pytorch_version": torch.__version__.split("+")[0],
        "file_format_version": 3,
        "max_file_format_version": 10,
        "unknown_ops": [],
    }
    assert finding.details["ops"] > 0


def test_dij08_unquoted_pytorch_version(package_folder):
    folder = package_folder()
    set_scalar_text(folder, "pytorch_version", "1.10")
    found = problems(dij_report(folder), "DIJ08")
    assert {f.location for f in found} == {
        "weights.pytorch_state_dict.pytorch_version",
        "weights.torchscript.pytorch_version",
    }
    assert found[0].details == {"written": "1.10", "read_as": "1.1", "engine_read": "1.7.1", "engine_meant": "1.10.0"}


def test_dij08_quoted_versions(zoo_report):
    assert statuses(zoo_report, "DIJ08") == {"passed"}


def test_dij08_unquoted_version_read_as_written(package_folder):
    """An unquoted 1.13 is read as "1.13": the engine meant is the engine picked, nothing differs."""
    folder = package_folder()
    set_scalar_text(folder, "pytorch_version", "1.13")
    [finding] = dij_report(folder).by_id("DIJ08")
    assert finding.status == "passed"
    assert finding.details["read_as_written"] == [
        "weights.pytorch_state_dict.pytorch_version 1.13",
        "weights.torchscript.pytorch_version 1.13",
    ]


def test_dij09_tensorflow_version_missing(package_folder):
    folder = package_folder()
    edit_rdf(folder, lambda rdf: rdf["weights"]["tensorflow_saved_model_bundle"].pop("tensorflow_version"))
    [finding] = problems(dij_report(folder), "DIJ09")
    assert finding.details == {"tensorflow_version": None}


def test_dij09_tensorflow_version_stated(zoo_report):
    [finding] = zoo_report.by_id("DIJ09")
    assert finding.status == "passed" and finding.details["tensorflow_version"].startswith("2.")


def test_dij10_savedmodel_with_ops_and_attrs_tf_2_7_lacks(package_folder):
    folder = package_folder()
    edit_saved_model(folder, add_tf_2_13_additions)
    [finding] = problems(dij_report(folder), "DIJ10")
    assert finding.status == "warning"
    assert {k: finding.details[k] for k in ("engine", "absent_ops", "new_attrs")} == {
        "engine": "tensorflow 2.7.0",
        "absent_ops": ["DisableCopyOnRead"],
        "new_attrs": ["VarHandleOp.debug_name"],
    }


def test_dij10_unknown_op_leaves_the_risk(package_folder):
    folder = package_folder()

    def add_op(saved):
        saved.meta_graphs[0].graph_def.node.add(name="fancy", op="FancyNewOp")

    edit_saved_model(folder, add_op)
    [finding] = problems(dij_report(folder), "DIJ10")
    assert (finding.details["unknown_ops"], finding.details["absent_ops"]) == (["FancyNewOp"], [])


def test_dij10_settled_when_every_op_is_in_tf_2_7(zoo_report):
    [finding] = zoo_report.by_id("DIJ10")
    assert finding.status == "passed"
    assert {k: finding.details[k] for k in ("engine", "absent_ops", "unknown_ops", "new_attrs")} == {
        "engine": "tensorflow 2.7.0",
        "absent_ops": [],
        "unknown_ops": [],
        "new_attrs": [],
    }


def test_dij11_savedmodel_nested_in_a_folder(package_folder):
    folder = package_folder()
    edit_saved_model(folder, lambda saved: None, prefix="model/")
    [finding] = problems(dij_report(folder), "DIJ11")
    assert finding.details["missing"] == ["saved_model.pb", "variables/"]
    assert finding.details["root_members"] == ["model/"]


def test_dij11_tag_and_signature(package_folder):
    folder = package_folder()

    def retag(saved):
        saved.meta_graphs[0].meta_info_def.tags[:] = ["train"]

    edit_saved_model(folder, retag)
    [finding] = problems(dij_report(folder), "DIJ11")
    assert finding.details["tags"] == [["train"]]

    folder = package_folder()

    def rename_signature(saved):
        signatures = saved.meta_graphs[0].signature_def
        signatures["serve"].CopyFrom(signatures["serving_default"])
        del signatures["serving_default"]

    edit_saved_model(folder, rename_signature)
    [finding] = problems(dij_report(folder), "DIJ11")
    assert "serve" in finding.details["signatures"] and "serving_default" not in finding.details["signatures"]


def test_dij11_zoo_savedmodel_layout(zoo_report):
    [finding] = zoo_report.by_id("DIJ11")
    assert finding.status == "passed"
    assert {"saved_model.pb", "variables/"} <= set(finding.details["root_members"])


def test_dij12_signature_keys_differ_from_tensor_ids(package_folder):
    folder = package_folder()

    def rename_outputs(saved):
        outputs = saved.meta_graphs[0].signature_def["serving_default"].outputs
        for key in ("mask", "distance"):
            outputs[key].CopyFrom(outputs["probability"])
        del outputs["probability"]

    edit_saved_model(folder, rename_outputs)
    [finding] = problems(dij_report(folder), "DIJ12")
    assert finding.details == {"kind": "outputs", "keys": ["distance", "mask"], "ids": ["probability"]}


def test_dij12_signature_keys_are_tensor_ids(zoo_report):
    [finding] = zoo_report.by_id("DIJ12")
    assert finding.details == {"inputs": ["raw"], "outputs": ["probability"]}


def test_dij13_onnx_opset_and_ir_too_new(package_folder):
    import onnx

    folder = package_folder()
    model = onnx.load(str(folder / "weights.onnx"))
    model.opset_import[0].version, model.ir_version = 18, 9
    onnx.save(model, str(folder / "weights.onnx"))
    found = problems(dij_report(folder), "DIJ13")
    assert len(found) == 2
    assert {k: found[0].details[k] for k in ("opset", "ir_version", "engine")} == {
        "opset": 18,
        "ir_version": 9,
        "engine": "onnx opset 17 (onnxruntime 1.12.1)",
    }


def test_dij13_onnx_opset_17_ir_8(zoo_report):
    [finding] = zoo_report.by_id("DIJ13")
    assert finding.status == "passed"
    assert (finding.details["opset"], finding.details["ir_version"]) == (17, 8)


def test_dij14_state_dict_alone(package_folder):
    folder = package_folder()
    edit_rdf(folder, lambda rdf: rdf.update(weights={"pytorch_state_dict": rdf["weights"]["pytorch_state_dict"]}))
    [finding] = problems(dij_report(folder), "DIJ14")
    assert finding.status == "warning"
    assert finding.details == {"architecture": "UNet2d", "dependencies": None}


def test_dij14_state_dict_not_used(zoo_report):
    [finding] = zoo_report.by_id("DIJ14")
    assert finding.details == {"used_instead": ["onnx", "tensorflow_saved_model_bundle", "torchscript"]}


def test_dij15_stardist_name_and_config(package_folder):
    folder = package_folder()

    def stardist(rdf):
        rdf["name"] = "StarDist-like nuclei"
        rdf["config"]["stardist"] = {"stardist_version": "0.8.5"}

    edit_rdf(folder, stardist)
    [finding] = problems(dij_report(folder), "DIJ15")
    assert finding.details == {"name": "StarDist-like nuclei"}


def test_dij15_not_stardist(zoo_report):
    [finding] = zoo_report.by_id("DIJ15")
    assert finding.details["config_stardist"] is False


# ------------------------------------------------------------------------------------------ tensors and axes
def _input_axes(folder, change) -> None:
    edit_rdf(folder, lambda rdf: change(rdf["inputs"][0]["axes"]))


def test_dij16_batch_and_time(package_folder):
    folder = package_folder()
    _input_axes(folder, lambda axes: axes.insert(1, {"type": "time", "id": "t"}))
    [finding] = problems(dij_report(folder), "DIJ16")
    assert finding.details == {"axes": "btcyx", "problem": "both b and t"}


def test_dij16_axes_mappable(zoo_report):
    assert statuses(zoo_report, "DIJ16") == {"passed"}


def test_dij17_space_axis_without_id_and_channel_without_names(package_folder):
    folder = package_folder()

    def break_axes(axes):
        del axes[3]["id"]
        del axes[1]["channel_names"]

    _input_axes(folder, break_axes)
    found = {f.location: f.details for f in problems(dij_report(folder), "DIJ17")}
    assert found == {
        "inputs.0.axes.1": {"axis_type": "channel", "axis_id": "channel"},
        "inputs.0.axes.3": {"axis_type": "space", "axis_id": None},
    }


def test_dij17_axis_ids_written(zoo_report):
    assert statuses(zoo_report, "DIJ17") == {"passed"}


def test_dij18_two_inputs(package_folder):
    folder = package_folder()

    def second_input(rdf):
        rdf["inputs"].append({**rdf["inputs"][0], "id": "raw2"})

    edit_rdf(folder, second_input)
    [finding] = problems(dij_report(folder), "DIJ18")
    assert finding.details == {"n_inputs": 2, "input_ids": ["raw", "raw2"]}


def test_dij18_one_image_input(zoo_report):
    [finding] = zoo_report.by_id("DIJ18")
    assert finding.details == {"n_inputs": 1, "input_ids": ["raw"]}


def test_dij19_model_input_not_float32(package_folder):
    folder = package_folder()

    def uint8(rdf):
        rdf["inputs"][0]["preprocessing"][-1]["kwargs"]["dtype"] = "uint8"

    edit_rdf(folder, uint8)
    edit_saved_model(
        folder, lambda saved: setattr(saved.meta_graphs[0].signature_def["serving_default"].inputs["raw"], "dtype", 4)
    )  # DT_UINT8
    found = {f.details["source"]: f.details["dtype"] for f in problems(dij_report(folder), "DIJ19")}
    assert found == {"rdf": "uint8", "tensorflow_saved_model_bundle": "uint8"}


def test_dij19_float32_input(zoo_report):
    assert statuses(zoo_report, "DIJ19") == {"passed"}


def test_dij20_unsupported_and_mismatched_output_dtype(package_folder):
    folder = package_folder()
    edit_rdf(folder, lambda rdf: rdf["outputs"][0]["data"].update(type="float16"))
    [finding] = problems(dij_report(folder), "DIJ20")
    assert finding.details == {"declared": "float16"}

    folder = package_folder()
    edit_rdf(folder, lambda rdf: rdf["outputs"][0]["data"].update(type="uint8"))
    found = {f.details["weights"]: f.details["returned"] for f in problems(dij_report(folder), "DIJ20")}
    assert found == {"onnx": "float32", "tensorflow_saved_model_bundle": "float32"}


def test_dij20_output_dtype_as_returned(zoo_report):
    assert statuses(zoo_report, "DIJ20") == {"passed"}


def test_dij21_referenced_output_with_offset(package_folder):
    folder = package_folder()
    edit_rdf(folder, lambda rdf: rdf["outputs"][0]["axes"][2]["size"].update(offset=4))
    [finding] = problems(dij_report(folder), "DIJ21")
    assert finding.details == {"scale": 1.0, "offset": 4.0, "reference_scale": 1.0}


def test_dij21_referenced_output_identity(zoo_report):
    assert statuses(zoo_report, "DIJ21") == {"passed"}


def test_dij22_parameterized_output_and_referencing_input(package_folder):
    folder = package_folder()

    def break_sizes(rdf):
        rdf["outputs"][0]["axes"][3]["size"] = {"min": 36, "step": 4}
        rdf["inputs"][0]["axes"][3]["size"] = {"tensor_id": "raw", "axis_id": "y"}

    edit_rdf(folder, break_sizes)
    found = {f.location: f.details["size"] for f in problems(dij_report(folder), "DIJ22")}
    assert found == {"inputs.0.axes.3": "reference", "outputs.0.axes.3": "parameterized"}


def test_dij22_supported_sizes(zoo_report):
    assert statuses(zoo_report, "DIJ22") == {"passed"}


def test_dij23_batch_of_two(package_folder):
    folder = package_folder()
    _input_axes(folder, lambda axes: axes[0].update(size=2))
    [finding] = problems(dij_report(folder), "DIJ23")
    assert finding.details == {"batch": 2}


def test_dij23_free_batch(zoo_report):
    assert statuses(zoo_report, "DIJ23") == {"passed"}


def test_dij24_min_not_multiple_of_step_and_halo_too_large(package_folder):
    folder = package_folder()
    x_min = load_rdf(folder)["inputs"][0]["axes"][3]["size"]["min"]
    halo = (x_min + 1) // 2

    def break_tiling(rdf):
        rdf["inputs"][0]["axes"][2]["size"] = {"min": 33, "step": 4}
        rdf["outputs"][0]["axes"][3]["halo"] = halo  # the smallest output tile minus twice the halo is ≤ 0

    edit_rdf(folder, break_tiling)
    found = {f.location: f.details for f in problems(dij_report(folder), "DIJ24")}
    assert found == {"inputs.0.axes.2": {"min": 33, "step": 4}, "outputs.0.axes.3": {"tile": x_min, "halo": halo}}


def test_dij24_tiling_geometry(zoo_report):
    assert statuses(zoo_report, "DIJ24") == {"passed"}


def test_dij25_fixed_tile_too_large(package_folder):
    folder = package_folder()

    def huge(axes):
        axes[2]["size"] = axes[3]["size"] = 8192

    _input_axes(folder, huge)
    [finding] = problems(dij_report(folder), "DIJ25")
    assert finding.details == {"elements": 8192 * 8192, "limit": 4096 * 4096 * 3}


def test_dij25_small_tiles(zoo_report):
    assert statuses(zoo_report, "DIJ25") == {"passed"}


def test_dij26_quoted_boolean(package_folder):
    folder = package_folder()
    set_scalar_text(folder, "allow_tiling", '"true"')
    [finding] = problems(dij_report(folder), "DIJ26")
    assert finding.details == {"value": "true", "yaml_type": "str"}


def test_dij26_real_booleans(zoo_report):
    [finding] = zoo_report.by_id("DIJ26")
    assert finding.details == {"allow_tiling": True}


# ------------------------------------------------------------------------------------------ processing
def _preprocessing(folder, steps: list[dict]) -> None:
    edit_rdf(folder, lambda rdf: rdf["inputs"][0].update(preprocessing=steps))


def test_dij27_unimplemented_op_and_clip_without_max(package_folder):
    folder = package_folder()
    _preprocessing(folder, [{"id": "softmax", "kwargs": {"axes": ["channel"]}}, {"id": "clip", "kwargs": {"min": 0.0}}])
    found = {f.details["op"]: f.details["kwargs"] for f in problems(dij_report(folder), "DIJ27")}
    assert found == {"softmax": ["axes"], "clip": ["min"]}


def test_dij27_implemented_ops(zoo_report):
    assert statuses(zoo_report, "DIJ27") == {"passed"}


def test_dij28_quoted_number(package_folder):
    folder = package_folder()
    set_scalar_text(folder, "eps", '"1e-6"')
    [finding] = problems(dij_report(folder), "DIJ28")
    assert finding.details == {"op": "zero_mean_unit_variance", "kwarg": "eps", "value": "1e-6"}


def test_dij28_plain_numbers(zoo_report):
    assert statuses(zoo_report, "DIJ28") == {"passed"}


def test_dij29_percentiles_and_reference_tensor(package_folder):
    folder = package_folder()
    _preprocessing(
        folder,
        [
            {
                "id": "scale_range",
                "kwargs": {
                    "axes": ["y", "x"],
                    "min_percentile": 1.0,
                    "max_percentile": 99.8,
                    "reference_tensor": "other",
                },
            }
        ],
    )
    found = [f.details for f in problems(dij_report(folder), "DIJ29")]
    assert found == [
        {"op": "scale_range", "reference_tensor": "other"},
        {"op": "scale_range", "min_percentile": 1.0, "max_percentile": 99.8},
    ]


def test_dij29_per_sample_statistics(zoo_report):
    assert statuses(zoo_report, "DIJ29") == {"passed"}


def test_dij30_per_channel_gain(package_folder):
    folder = package_folder()
    _preprocessing(folder, [{"id": "scale_linear", "kwargs": {"gain": [1.0, 2.0], "offset": 0.0, "axis": "channel"}}])
    [finding] = problems(dij_report(folder), "DIJ30")
    assert finding.details == {"op": "scale_linear", "gain": [1.0, 2.0], "offset": 0.0}


def test_dij30_batch_axis_name_hits_channels(package_folder):
    folder = package_folder()

    def two_channels(rdf):
        rdf["inputs"][0]["axes"][1]["channel_names"] = ["a", "b"]
        rdf["inputs"][0]["preprocessing"] = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["batch", "y", "x"]}}]

    edit_rdf(folder, two_channels)
    [finding] = problems(dij_report(folder), "DIJ30")
    assert finding.details == {"op": "zero_mean_unit_variance", "axes": ["batch", "y", "x"], "channels": 2}


def test_dij30_single_channel_normalization(zoo_report):
    assert statuses(zoo_report, "DIJ30") == {"passed"}


def test_dij31_normalization_only_in_a_macro(package_folder):
    folder = package_folder()

    def macro(rdf):
        rdf["inputs"][0]["preprocessing"] = []
        rdf["config"]["deepimagej"]["prediction"] = {
            "preprocess": [{"spec": "ij.IJ::runMacroFile", "kwargs": "preprocessing.ijm"}]
        }

    edit_rdf(folder, macro)
    [finding] = problems(dij_report(folder), "DIJ31")
    assert finding.details == {"macros": ["preprocessing.ijm"]}


def test_dij31_macro_beside_rdf_processing(package_folder):
    folder = package_folder()
    edit_rdf(
        folder,
        lambda rdf: rdf["config"]["deepimagej"].update(
            prediction={"preprocess": [{"spec": "ij.IJ::runMacroFile", "kwargs": "preprocessing.ijm"}]}
        ),
    )
    assert statuses(dij_report(folder), "DIJ31") == {"passed"}


# ------------------------------------------------------------------------------------------ real models, verdicts
def test_unet2d_nuclei_broad_onnx_opset_20_and_settled_torchscript(tmp_path):
    folder = copy_real_model("unet2d_nuclei_broad", tmp_path)
    report = dij_report(folder / "rdf.yaml")
    found = problems(report, "DIJ13")
    assert {(f.details["opset"], f.details["ir_version"]) for f in found} == {(20, 9)}
    assert len(found) == 2  # the opset and the IR version, each a reason on its own
    [torchscript] = report.by_id("DIJ07")
    assert torchscript.status == "passed"  # settled from the archive: version 3, operators all in libtorch 2.0.0
    assert {k: torchscript.details[k] for k in ("engine", "pytorch_version", "file_format_version", "unknown_ops")} == {
        "engine": "pytorch 2.0.0",
        "pytorch_version": "2.5.1",
        "file_format_version": 3,
        "unknown_ops": [],
    }
    # the spec dropped the id of the x axes (its default), and JDLL needs it written
    assert {f.location for f in problems(report, "DIJ17")} == {"inputs.0.axes.3", "outputs.0.axes.3"}
    assert report.deepimagej_verdict == "will not run"


def test_unet2d_multi_tensor_has_two_inputs(tmp_path):
    folder = copy_real_model("unet2d_multi_tensor", tmp_path)
    report = dij_report(folder / "rdf.yaml")
    [finding] = problems(report, "DIJ18")
    assert finding.details == {"n_inputs": 2, "input_ids": ["input0", "input1"]}
    assert statuses(report, "DIJ07") == {"passed"}
    assert report.deepimagej_verdict == "will not run"


@pytest.mark.slow
def test_rules_run_through_validate_source_when_the_spec_rejects_the_rdf(package_folder):
    folder = package_folder()
    edit_rdf(folder, lambda rdf: rdf["inputs"][0]["axes"][2].update(size={"min": -4, "step": 8}))
    report = validate_source(folder)
    assert report.status == "failed" and statuses(report, "FMT002") == {"failed"}
    alone = dij_report(folder)
    # the static rules (DIJ) all run; the emulation (DJE) needs a valid description and is skipped
    dij = [(f.id, f.status, f.location, f.details) for f in report.findings if f.id.startswith("DIJ")]
    assert dij == [(f.id, f.status, f.location, f.details) for f in alone.findings if f.id.startswith("DIJ")]
    assert {f.id for f in report.findings if f.id.startswith("DIJ") and f.status == "skipped"} == set()
    assert statuses(report, "DJE001") == {"skipped"}
    halo = load_rdf(folder)["outputs"][0]["axes"][2]["halo"]
    assert [f.details for f in problems(report, "DIJ24")] == [{"min": -4, "step": 8}, {"tile": -4, "halo": halo}]
    assert report.deepimagej_verdict == alone.deepimagej_verdict == "will not run"
    assert report.to_dict()["deepimagej"] == {"verdict": "will not run", "rules": ["DIJ24"]}


def test_zoo_package_runs_in_deepimagej(zoo_report):
    risks = [f for f in zoo_report.findings if f.status in ("failed", "warning")]
    assert zoo_report.deepimagej_verdict in ("runs", "runs with risks"), [(f.id, f.message) for f in risks]
    assert all(f.rule.severity == "risk" and f.message for f in risks)


def test_checks_never_raise_on_odd_yaml(package_folder):
    folder = package_folder()
    edit_rdf(
        folder,
        lambda rdf: rdf.update(inputs={"raw": 1}, outputs=[None, 3], weights=["onnx"], config={"deepimagej": "yes"}),
    )
    report = dij_report(folder)
    crashed = [f for f in report.findings if (f.details or {}).get("internal_error")]
    assert crashed == []
    assert {f.details["field"] for f in problems(report, "DIJ03")} == {"inputs", "weights"}


def test_unreadable_weight_files_are_findings(package_folder):
    folder = package_folder()
    (folder / "weights.onnx").write_bytes(b"not onnx")
    (folder / "weights_torchscript.pt").write_bytes(b"not a zip")
    with zipfile.ZipFile(folder / TF_ZIP, "w") as archive:
        archive.writestr("saved_model.pb", b"\xff\xff not a protobuf")
    report = dij_report(folder)
    assert [f.status for f in report.by_id("DIJ13")] == ["failed"]
    assert [f.status for f in report.by_id("DIJ07")] == ["warning"]
    assert "cannot be parsed" in problems(report, "DIJ11")[0].details["reason"]
    assert not [f for f in report.findings if (f.details or {}).get("internal_error")]


def test_test_tensor_npy_is_untouched(package_folder):
    """The checks read files; they never write into the package."""
    folder = package_folder()
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    dij_report(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert np.load(folder / "test_input.npy").dtype == np.float32


# ------------------------------------------------------------------------------------------ format 0.4
RDF_V04 = """format_version: 0.4.10
type: model
name: v04 model
description: a format 0.4 description
license: MIT
documentation: README.md
authors: [{name: x}]
cite: [{text: x, doi: 10.1/x}]
inputs:
- name: raw
  axes: AXES
  data_type: float32
  shape: {min: [1, 1, 64, 64], step: [0, 0, 16, 16]}
  preprocessing:
  - name: scale_range
    kwargs: {mode: per_dataset, axes: xy, min_percentile: 0, max_percentile: 100}
outputs:
- name: out
  axes: bcyx
  data_type: float32
  shape: {reference_tensor: raw, scale: [1, 1, 1, 1], offset: [0, 0, 0, 0]}
  halo: [0, 0, 8, 8]
test_inputs: [test_input.npy]
test_outputs: [test_output.npy]
weights:
  pytorch_state_dict: {source: weights.pt, architecture: unet.py:UNet, sha256: abc}
"""


def test_format_0_4(tmp_path):
    (tmp_path / "rdf.yaml").write_text(RDF_V04.replace("AXES", "bcyx"))
    np.save(tmp_path / "test_input.npy", np.ones((1, 1, 64, 64), np.float32))
    report = dij_report(tmp_path)
    [no_runnable] = problems(report, "DIJ05")  # pytorch_state_dict runs only from format 0.5
    assert no_runnable.details == {"formats": ["pytorch_state_dict"], "runnable": []}
    [per_dataset] = problems(report, "DIJ29")
    assert per_dataset.details == {"op": "scale_range", "mode": "per_dataset"}
    for rule_id in ("DIJ02", "DIJ03", "DIJ14", "DIJ16", "DIJ17", "DIJ18", "DIJ21", "DIJ22", "DIJ23", "DIJ24", "DIJ32"):
        assert statuses(report, rule_id) == {"passed"}, rule_id


def test_format_0_4_unknown_axis_letter(tmp_path):
    (tmp_path / "rdf.yaml").write_text(RDF_V04.replace("AXES", "bcqx"))
    [finding] = problems(dij_report(tmp_path), "DIJ16")
    assert finding.details == {"axes": "bcqx", "problem": "axes ['q'] are not among b, t, z, i, r, c, y, x"}


def test_format_0_4_null_scale_is_a_new_axis(tmp_path):
    """A 0.4 output whose reference `scale` holds null (a new axis of size 2·offset) is read, not crashed on: every
    rule judges it (before, twelve DIJ checks reported "the check itself failed (TypeError ...)")."""
    rdf = RDF_V04.replace("AXES", "bcyx").replace(
        "scale: [1, 1, 1, 1], offset: [0, 0, 0, 0]", "scale: [1, null, 1, 1], offset: [0, 1, 0, 0]"
    )
    assert "null" in rdf
    (tmp_path / "rdf.yaml").write_text(rdf)
    np.save(tmp_path / "test_input.npy", np.ones((1, 1, 64, 64), np.float32))
    report = dij_report(tmp_path)
    assert [f.id for f in report.findings if (f.details or {}).get("internal_error")] == []
    for rule_id in ("DIJ16", "DIJ20", "DIJ21", "DIJ22", "DIJ23", "DIJ24", "DIJ25"):
        assert statuses(report, rule_id) == {"passed"}, rule_id
    [tiling] = report.by_id("DIJ24")
    assert tiling.details == {"smallest_image": {}}


def test_format_0_3_reference_is_read_as_0_4(tmp_path):
    """0.3 and 0.4 both mean reference·scale + 2·offset, JDLL's own formula: DIJ21 passes a half-size output (before,
    a 0.3 rdf was judged by the 0.5 meaning of `scale` and failed)."""
    rdf = (
        RDF_V04.replace("AXES", "bcyx")
        .replace("format_version: 0.4.10", "format_version: 0.3.2")
        .replace("scale: [1, 1, 1, 1], offset: [0, 0, 0, 0]", "scale: [1, 1, 0.5, 0.5], offset: [0, 0, 0, 0]")
    )
    (tmp_path / "rdf.yaml").write_text(rdf)
    np.save(tmp_path / "test_input.npy", np.ones((1, 1, 64, 64), np.float32))
    report = dij_report(tmp_path)
    assert statuses(report, "DIJ21") == {"passed"}
    assert statuses(report, "DIJ32") == {"passed"}  # 0.3 lists its test inputs at the top level, as 0.4 does
    assert statuses(report, "DIJ02") == {"failed"}  # JDLL reads no 0.3: still "will not run"


def test_dij27_step_without_a_name(tmp_path):
    rdf = RDF_V04.replace("AXES", "bcyx").replace("  - name: scale_range\n    kwargs:", "  - scale_range:\n    kwargs:")
    (tmp_path / "rdf.yaml").write_text(rdf)
    [finding] = problems(dij_report(tmp_path), "DIJ27")
    assert finding.details["op"] == "None"
