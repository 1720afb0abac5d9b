"""Operators the engines of deepImageJ are known to have, to settle "was this file saved by a newer framework
loadable by the older engine?" from the file's content (RULES.md DIJ07, DIJ10).

These are allow-lists, not complete registries: an operator missing here is reported as unverified (the risk
stays), never as absent. Each name was part of the framework well before the engine's release and is still part
of it today (operators are not removed and re-added), so the engine has it."""

from __future__ import annotations

# The highest TorchScript archive file-format version libtorch reads (caffe2/serialize/versions.h,
# kMaxSupportedFileFormatVersion). It became 0xA (10) with the aten::gelu upgrader dated 2022-02-11 in that header's
# history, and it is still 0xA in the torch 2.13 headers installed here; libtorch 1.13.1 (Dec 2022) and 2.0.0
# (Mar 2023) lie in between, so both read versions up to 10. Writers record the smallest version their operators
# need (kMinProducedFileFormatVersion = 3), which is what torch 2.x writes for plain CNNs.
LIBTORCH_MAX_FILE_FORMAT_VERSION = {"1.13.1": 10, "2.0.0": 10}

# aten operators (as TorchScript code calls them: `torch.<name>(` or `ops.aten.<name>(`) in libtorch ≤ 1.13
TORCH_ATEN_OPS = frozenset(
    """
_convolution convolution conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d linear matmul mm
bmm addmm einsum batch_norm instance_norm layer_norm group_norm _batch_norm_impl_index native_batch_norm
relu relu_ leaky_relu leaky_relu_ elu elu_ selu celu gelu silu silu_ hardtanh hardtanh_ hardswish hardsigmoid
sigmoid sigmoid_ tanh tanh_ softmax log_softmax softplus prelu mish glu threshold threshold_
max_pool1d max_pool2d max_pool3d max_pool2d_with_indices avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d
adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d max_unpool2d
upsample_nearest1d upsample_nearest2d upsample_nearest3d upsample_linear1d upsample_bilinear2d upsample_bicubic2d
upsample_trilinear3d _upsample_nearest_exact1d _upsample_nearest_exact2d _upsample_nearest_exact3d
_upsample_bilinear2d_aa _upsample_bicubic2d_aa pixel_shuffle pixel_unshuffle grid_sampler affine_grid_generator
constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d replication_pad3d
add add_ sub sub_ mul mul_ div div_ neg abs exp log log1p sqrt rsqrt pow clamp clamp_ clamp_min clamp_max floor ceil
round sign reciprocal remainder fmod floor_divide maximum minimum where eq ne lt le gt ge logical_and logical_or
logical_not bitwise_not sin cos erf mean sum max min amax amin argmax argmin std var norm prod cumsum all any
cat stack view reshape flatten permute transpose contiguous squeeze unsqueeze expand expand_as repeat slice select
narrow chunk split split_with_sizes unbind index index_select gather t size numel dim flip roll to type_as detach
clone zeros zeros_like ones ones_like full full_like empty empty_like arange tensor scalar_tensor masked_fill copy_
fill_ zero_ dropout dropout_ feature_dropout alpha_dropout embedding bernoulli
__is__ __isnot__ __not__ __contains__ __getitem__ __range_length __derive_index __and__ __or__ __xor__ append
len format list Int Float Bool ScalarImplicit IntImplicit FloatImplicit floordiv warn str extend insert pop device
item keys values items dict
""".split()
)

TORCH_PRIM_OPS = frozenset(
    """
NumToTensor RaiseException device dtype layout min max abs data shape requires_grad is_cuda
unchecked_unwrap_optional Uninitialized TupleIndex TupleUnpack ListConstruct ListUnpack Constant
""".split()
)

# TensorFlow op types (NodeDef.op) in TF ≤ 2.4, so in the 2.7 engine
TF_OPS = frozenset(
    """
Const Placeholder PlaceholderWithDefault Identity IdentityN NoOp StatefulPartitionedCall PartitionedCall
ReadVariableOp VarHandleOp AssignVariableOp VarIsInitializedOp
Conv2D Conv3D Conv2DBackpropInput Conv3DBackpropInputV2 DepthwiseConv2dNative BiasAdd MatMul BatchMatMulV2
Relu Relu6 LeakyRelu Elu Selu Sigmoid Tanh Softmax LogSoftmax Softplus Softsign Erf
MaxPool MaxPool3D AvgPool AvgPool3D FusedBatchNorm FusedBatchNormV3
ConcatV2 Pack Unpack Reshape Transpose Squeeze ExpandDims Shape StridedSlice Slice Split SplitV Pad PadV2 MirrorPad
ResizeBilinear ResizeNearestNeighbor ResizeBicubic DepthToSpace SpaceToDepth BatchToSpaceND SpaceToBatchND
AddV2 Add AddN Sub Mul RealDiv Div DivNoNan Maximum Minimum Square Sqrt Rsqrt Exp Log Pow Neg Abs Floor FloorDiv
FloorMod Round Sign SquaredDifference ClipByValue Mean Sum Max Min Prod ArgMax ArgMin Cast Fill ZerosLike OnesLike
Range Tile Select SelectV2 Greater GreaterEqual Less LessEqual Equal NotEqual LogicalAnd LogicalOr LogicalNot
GatherV2 Einsum OneHot
SaveV2 RestoreV2 MergeV2Checkpoints ShardedFilename StringJoin StaticRegexFullMatch
""".split()
)

# attributes TensorFlow added to an op after 2.7: a node that sets one fails to load ("NodeDef mentions attr")
# MatMul grad_a/grad_b: added in TF 2.10/2.11 (tensorflow-upstream r2.10/r2.11 fixes "undefined attribute grad_a");
# VarHandleOp debug_name: not in tf.raw_ops.VarHandleOp of TF 2.10-era docs (container, shared_name,
# allowed_devices), written by TF 2.21's saved_model.save
TF_ATTRS_ADDED_AFTER_2_7: dict[str, frozenset[str]] = {
    "MatMul": frozenset({"grad_a", "grad_b"}),
    "VarHandleOp": frozenset({"debug_name"}),
}

# op types the TF engines deepImageJ installs (2.7.0 in the GUI, 2.10.1 from macros) certainly lack: a SavedModel
# using them fails to load. DisableCopyOnRead: written into the variable save/restore functions by TF ≥ 2.13;
# "Op type not registered 'DisableCopyOnRead'" from Java's SavedModelBundle.load (tensorflow/tensorflow#62489,
# tensorflow/models#10999).
TF_OPS_NEWER_THAN_ENGINES = frozenset({"DisableCopyOnRead"})
