"""Write a TF SavedModel that Fiji's TensorFlow 2.7 engine can load as well as today's TensorFlow.

A SavedModel saved by TF ≥ 2.14 from variables uses ops and attributes TF 2.7 lacks (DisableCopyOnRead,
VarHandleOp.debug_name: RULES.md DIJ10). So the serving function is frozen (variables folded into
constants) and written as a TF1-style SavedModel: tag `serve`, one `serving_default` signature keyed by
the rdf tensor ids, `saved_model.pb` and an (empty) `variables/` folder. bioimageio.core loads it with
`TFSMLayer(call_endpoint="serving_default")`, which returns a dict."""

from __future__ import annotations

from pathlib import Path


def save_frozen_saved_model(function, folder: Path, input_ids: list[str], output_ids: list[str]) -> list[str]:
    """`function`: a tf.function with an input signature, returning {output id: tensor}. Returns the op
    types of the written graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    from tensorflow.python.util import deprecation

    concrete = function.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    graph_def = frozen.graph.as_graph_def()
    # the frozen function's outputs are the flattened dict: its values in sorted key order
    outputs = dict(zip(sorted(concrete.structured_outputs), frozen.outputs))
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        inputs = {i: graph.get_tensor_by_name(t.name) for i, t in zip(input_ids, frozen.inputs)}
        results = {o: graph.get_tensor_by_name(outputs[o].name) for o in output_ids}
        with deprecation.silence():  # the TF1 builder is deliberate: TF 2.7 must read what it writes
            signature = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(inputs, results)
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(
                session,
                [tf.saved_model.SERVING],
                strip_default_attrs=True,
                signature_def_map={"serving_default": signature},
            )
            builder.save()
    (folder / "variables").mkdir(exist_ok=True)
    return sorted({node.op for node in graph_def.node})
