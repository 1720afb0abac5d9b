"""Which of a package's weights train, why, and proof that they are the package's: TorchScript without --trust, the
state dict with it, ONNX through the translator; a package with nothing trainable is one line saying why."""

from __future__ import annotations

import pytest

from zoo.bioimage.source import open_source
from zoo.errors import InputError
from zoo.finetune.trainable import choose_trainable, freeze
from zoo.packaging.parent import read_package_rdf


def trainable_of(source, tmp_path, **options):
    with open_source(source) as opened:
        return choose_trainable(opened, read_package_rdf(opened), workdir=tmp_path, **options)


def test_torchscript_without_trust_the_state_dict_with_it(tiny_package, tmp_path):
    untrusted = trainable_of(tiny_package, tmp_path, trust=False)
    assert (untrusted.weight_format, untrusted.framework) == ("torchscript", "torchscript")
    assert "pytorch_state_dict" in untrusted.passed_over and "--trust" in untrusted.passed_over["pytorch_state_dict"]
    assert untrusted.proof.passed and untrusted.proof.max_abs == 0.0
    assert untrusted.normalisation.startswith("fixed")  # traced: batch normalisation runs as exported
    trusted = trainable_of(tiny_package, tmp_path, trust=True)
    assert (trusted.weight_format, trusted.framework, trusted.final_activation) == (
        "pytorch_state_dict", "pytorch", "sigmoid",
    )  # fmt: skip
    assert trusted.trains_on_logits and trusted.proof.passed
    assert trusted.normalisation.startswith("adapts")


def test_onnx_translated_and_proven_before_training(one_format, tmp_path):
    trainable = trainable_of(one_format("onnx"), tmp_path, trust=False)
    assert (trainable.weight_format, trainable.framework, trainable.final_activation) == ("onnx", "onnx", "sigmoid")
    assert trainable.proof.passed and 0 < trainable.proof.max_abs < 1e-4
    assert len(trainable.proof.cases) >= 3  # the test input and random inputs of other valid sizes


def test_a_format_can_be_asked_for(tiny_package, tmp_path):
    assert trainable_of(tiny_package, tmp_path, trust=False, weights="onnx").weight_format == "onnx"
    with pytest.raises(InputError, match="keras_v3"):
        trainable_of(tiny_package, tmp_path, trust=False, weights="keras_v3")


def test_state_dict_only_needs_trust(one_format, tmp_path):
    with pytest.raises(InputError) as caught:
        trainable_of(one_format("pytorch_state_dict"), tmp_path, trust=False)
    message = str(caught.value)
    assert "cannot be fine-tuned" in message and "--trust" in message and "\n" not in message


def test_tensorflow_only_is_one_line_saying_why(one_format, tmp_path):
    with pytest.raises(InputError) as caught:
        trainable_of(one_format("tensorflow_saved_model_bundle"), tmp_path, trust=True)
    message = str(caught.value)
    assert "tensorflow_saved_model_bundle: a frozen TensorFlow graph without variables" in message
    assert "torchscript, onnx" in message and "\n" not in message


def test_freezing_the_encoder(tiny_package, one_format, tmp_path):
    named = trainable_of(tiny_package, tmp_path, trust=True).module
    frozen = freeze(named, "encoder")
    total = len(list(named.parameters()))
    assert 0 < frozen.frozen < total and frozen.total == total
    assert all(not p.requires_grad for n, p in named.named_parameters() if "encoders" in n)
    assert all(p.requires_grad for n, p in named.named_parameters() if "decoders" in n)
    assert freeze(named, "none").frozen == 0 and all(p.requires_grad for p in named.parameters())
    graph = trainable_of(one_format("onnx"), tmp_path, trust=False).module  # names from the graph say nothing
    by_order = freeze(graph, "encoder")
    assert by_order.frozen == by_order.total // 2 and "first half" in by_order.rule
    with pytest.raises(InputError):
        freeze(graph, "decoder")
