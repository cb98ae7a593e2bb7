"""The feature extractor: names, aliases, truncation, frozen parameters, preprocessing."""

from __future__ import annotations

import pytest
import torch

from painterly.vgg import LAYER_ALIASES, LAYER_NAMES, VGG19Features, layer_stride, resolve_layer
from painterly.weights import VGGWeights


def test_layer_names_cover_vgg19() -> None:
    assert len([n for n in LAYER_NAMES if n.startswith("conv")]) == 16
    assert len([n for n in LAYER_NAMES if n.startswith("pool")]) == 5
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-1] == "pool5"
    assert LAYER_ALIASES["block5_conv2"] == "relu5_2"
    assert LAYER_ALIASES["block3_pool"] == "pool3"


def test_unknown_layer_suggests_close_names() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'relu4_2'"):
        resolve_layer("relu4_22")
    with pytest.raises(ValueError, match="block5_conv2"):
        resolve_layer("block5_conv22")
    with pytest.raises(ValueError, match="painterly layers"):
        resolve_layer("fc7")


def test_strides() -> None:
    assert layer_stride("relu1_1") == 1
    assert layer_stride("pool1") == 2
    assert layer_stride("relu4_2") == 8
    assert layer_stride("block5_conv1") == 16
    assert layer_stride("pool5") == 32


def test_feature_shapes_and_alias_is_the_rectified_output(weights: VGGWeights) -> None:
    vgg = VGG19Features(weights)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    out = vgg(x, ["conv5_2", "relu5_2", "block5_conv2", "pool2", "relu1_1"])
    assert out["relu1_1"].shape == (1, 64, 64, 96)
    assert out["pool2"].shape == (1, 128, 16, 24)
    assert out["relu5_2"].shape == (1, 512, 4, 6)
    torch.testing.assert_close(out["block5_conv2"], out["relu5_2"])
    torch.testing.assert_close(out["relu5_2"], out["conv5_2"].clamp(min=0))
    assert (out["conv5_2"] < 0).any()


def test_truncated_and_frozen(weights: VGGWeights) -> None:
    vgg = VGG19Features(weights, up_to=["relu3_1", "relu1_1"])
    names = {n.split(".")[0] for n, _ in vgg.named_parameters()}
    assert names == {"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"}
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    with pytest.raises(ValueError, match="beyond"):
        vgg(torch.rand(1, 3, 32, 32), ["relu4_1"])
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg(x, ["relu3_1"])["relu3_1"].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in vgg.parameters())


def test_caffe_preprocessing_is_bgr_255_minus_mean(weights: VGGWeights) -> None:
    vgg = VGG19Features(weights, up_to=["conv1_1"])
    rgb = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    pre = vgg.preprocess(rgb)
    expected_bgr = torch.tensor([0.9 * 255 - 103.939, 0.5 * 255 - 116.779, 0.2 * 255 - 123.68])
    torch.testing.assert_close(pre[0, :, 0, 0], expected_bgr)


def test_avg_pooling_differs_from_max(weights: VGGWeights) -> None:
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    a = VGG19Features(weights, pooling="avg")(x, ["pool1"])["pool1"]
    m = VGG19Features(weights, pooling="max")(x, ["pool1"])["pool1"]
    assert a.shape == m.shape and (m >= a - 1e-4).all() and not torch.allclose(a, m)


def test_channels_last_gives_the_same_features(weights: VGGWeights) -> None:
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(2))
    vgg = VGG19Features(weights, up_to=["relu3_1"])
    ref = vgg(x, ["relu3_1"])["relu3_1"]
    vgg.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    torch.testing.assert_close(vgg(x, ["relu3_1"])["relu3_1"], ref, rtol=1e-4, atol=1e-3)
