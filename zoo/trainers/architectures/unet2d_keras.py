"""The 2D U-Net of unet2d.py built with Keras (channels last), for the `unet2d-keras` trainer."""

from __future__ import annotations


def build_unet2d_keras(
    in_channels: int = 1,
    out_channels: int = 1,
    base_channels: int = 16,
    depth: int = 3,
    final_activation: str = "sigmoid",
):
    """A functional Keras model (batch, y, x, channel) → same layout; spatial sizes multiples of 2**depth."""
    import keras
    from keras import layers

    def conv_block(x, width: int):
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        return x

    inputs = keras.Input(shape=(None, None, in_channels), name="raw")
    x, skips = inputs, []
    for level in range(depth):
        x = conv_block(x, base_channels * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = conv_block(x, base_channels * 2**depth)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(base_channels * 2**level, 2, strides=2)(x)
        x = layers.Concatenate()([x, skips[level]])
        x = conv_block(x, base_channels * 2**level)
    activation = None if final_activation == "none" else final_activation
    outputs = layers.Conv2D(out_channels, 1, activation=activation, name="probability")(x)
    return keras.Model(inputs, outputs, name="unet2d_keras")
