"""The per-machine choice of kernels: explicit choices honoured, the measured choice never the
slower one, the cache's round trip and its robustness, and plans that give the exact features.
Nothing here measures time: the timings are made up and passed in."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from painterly import kernels
from painterly.kernels import (
    KernelPlan,
    Timings,
    apply_plan,
    cache_path,
    choose_kernels,
    doctor_report,
    plan_from_timings,
)
from painterly.vgg import VGG19Features
from painterly.weights import CONV_NAMES, VGGWeights
from painterly.winograd import WinogradConv2d

CPU = torch.device("cpu")
SHAPES = list(kernels._distinct_shapes())


def fake_timings(
    fast: dict[str, float] | None = None,
    bf16: float | None = None,
    bf16_winograd: dict[str, float] | None = None,
) -> Timings:
    """fp32 direct 100 ms per shape (NCHW 110), Winograd F(4×4) as ``fast`` says (default 200);
    bf16 timed only if ``bf16`` is given (its ms per shape, direct; Winograd as
    ``bf16_winograd`` says, default the same as direct)."""
    fast = fast or {}
    timings: Timings = {}
    for layer in SHAPES:
        timings[layer, "fp32-direct"] = 100.0
        timings[layer, "fp32-nchw-direct"] = 110.0
        if layer != "conv1_1":
            timings[layer, "fp32-winograd4"] = fast.get(layer, 200.0)
        if bf16 is not None:
            timings[layer, "bf16-direct"] = bf16
            if CONV_NAMES.index(layer) >= 4:
                timings[layer, "bf16-winograd4"] = (bf16_winograd or {}).get(layer, bf16)
    return timings


def test_measured_choice_takes_each_layer_shapes_fastest_and_not_bf16_when_slower() -> None:
    timings = fake_timings({"conv3_2": 50.0, "conv4_2": 99.0}, bf16=150.0)
    plan = plan_from_timings(timings)
    assert plan.precision == "fp32" and plan.channels_last
    assert plan.algorithm("conv3_2") == plan.algorithm("conv3_4") == "winograd4"
    assert plan.algorithm("conv4_2") == "winograd4"
    assert plan.algorithm("conv3_1") == plan.algorithm("conv1_2") == "direct"
    assert plan.winograd_from == "conv3_2"
    # bf16 only where it is faster than the best fp32 plan.
    assert plan_from_timings(fake_timings(bf16=20.0)).precision == "bf16"
    assert plan_from_timings(fake_timings(bf16=100.0)).precision == "fp32"  # a tie: fp32
    # NCHW direct where it beats the best channels_last plan.
    slow_cl = {k: (300.0 if k[1] == "fp32-direct" else t) for k, t in fake_timings().items()}
    nchw = plan_from_timings(slow_cl)
    assert not nchw.channels_last and not nchw.algorithms


def test_each_layer_shape_takes_its_fastest_tile_size() -> None:
    timings = fake_timings({"conv3_2": 50.0})
    timings["conv2_1", "fp32-winograd6"] = 60.0
    timings["conv3_2", "fp32-winograd6"] = 70.0  # slower than F(4×4) there
    plan = plan_from_timings(timings)
    assert plan.algorithm("conv2_1") == "winograd6" and plan.algorithm("conv2_2") == "direct"
    assert plan.algorithm("conv3_2") == "winograd4"
    assert "F(4×4)/F(6×6) from conv2_1" in plan.describe()
    assert "fp32-winograd6" in kernels.AUTO_CANDIDATES


def test_trials_compute_whole_tiles_and_estimates_count_the_tiles_of_the_picture() -> None:
    # A trial side every m divides: F(6×6) on 32 px computed 36 × 36 and looked slow.
    for side in kernels._TRIAL_SIDE.values():
        assert all(side % m == 0 for m in (2, 4, 6)), side
    # conv5_1 at 512 × 384 px: 32 × 24 positions, 36 × 24 of whole 6 × 6 tiles.
    direct = kernels._estimate_ms("conv5_1", ["conv5_1"], 1.0, "fp32-direct")
    six = kernels._estimate_ms("conv5_1", ["conv5_1"], 1.0, "fp32-winograd6")
    four = kernels._estimate_ms("conv5_1", ["conv5_1"], 1.0, "fp32-winograd4")
    assert six / direct == pytest.approx(36 / 32) and four == pytest.approx(direct)
    # All layers of a shape: conv3_2's estimate counts conv3_2, conv3_3 and conv3_4.
    one = kernels._estimate_ms("conv3_2", ["conv3_2"], 1.0, "fp32-direct")
    assert kernels._estimate_ms(
        "conv3_2", ["conv3_2", "conv3_3", "conv3_4"], 1.0, "fp32-direct"
    ) == (pytest.approx(3 * one))


def test_requests_restrict_the_measured_choice() -> None:
    timings = fake_timings({"conv3_2": 50.0}, bf16=20.0)
    assert plan_from_timings(timings, precision="fp32").precision == "fp32"
    direct = plan_from_timings(timings, precision="fp32", convolution="direct")
    assert not direct.algorithms
    # Winograd asked for where no layer gains: F(4×4) from conv3_1 anyway.
    forced = plan_from_timings(fake_timings(), precision="fp32", convolution="winograd")
    assert forced.winograd_from == "conv3_1"
    bf16 = plan_from_timings(timings, convolution="direct")
    assert bf16.precision == "bf16" and not bf16.algorithms


def test_bf16_starts_winograd_where_it_pays_or_stays_direct() -> None:
    # With AMX direct bf16 is faster than bf16 Winograd on every layer: no Winograd at all.
    amx = plan_from_timings(fake_timings(bf16=20.0, bf16_winograd=dict.fromkeys(SHAPES, 30.0)))
    assert amx.precision == "bf16" and not amx.algorithms and amx.channels_last
    # Winograd from the first layer where the rest of the network gains (a tie: later).
    deep = plan_from_timings(fake_timings(bf16=20.0, bf16_winograd={"conv4_2": 10, "conv5_1": 10}))
    assert deep.winograd_from == "conv4_2"
    assert tuple(n for n, _ in deep.algorithms) == CONV_NAMES[CONV_NAMES.index("conv4_2") :]
    # Never before conv3_1, however fast the timings say it is there.
    early = plan_from_timings(fake_timings(bf16=20.0, bf16_winograd=dict.fromkeys(SHAPES, 1.0)))
    assert early.winograd_from == "conv3_1"
    # --convolution winograd with bf16 where it does not pay: from conv3_1, as before.
    slow = fake_timings(bf16=20.0, bf16_winograd=dict.fromkeys(SHAPES, 30.0))
    assert plan_from_timings(slow, "bf16", "winograd").winograd_from == "conv3_1"


def test_bf16_asked_for_is_measured_and_warned_about_where_emulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timings = fake_timings(bf16=200.0, bf16_winograd=dict.fromkeys(SHAPES, 300.0))
    monkeypatch.setattr(kernels, "_bf16_is_faster", lambda: False)
    with pytest.warns(UserWarning, match="emulated"):
        plan = choose_kernels(CPU, "bf16", cache_dir=tmp_path, measure=lambda: timings)
    # Slower than float32, but asked for: bf16, its fastest plan (direct here), measured.
    assert (plan.precision, plan.algorithms, plan.decided) == ("bf16", (), "measured")
    monkeypatch.setattr(kernels, "_bf16_is_faster", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_kernels(CPU, "bf16", "direct", cache_dir=tmp_path).decided == "given"


def test_explicit_choices_are_honoured_without_measuring(tmp_path: Path) -> None:
    def never() -> Timings:
        raise AssertionError("an explicit choice was measured")

    cases = {
        ("fp32", "direct"): ("fp32", None, False),
        ("fp32", "winograd"): ("fp32", "conv3_1", True),
        ("bf16", "direct"): ("bf16", None, True),
        ("bf16", "winograd"): ("bf16", "conv3_1", True),
    }
    for (precision, convolution), expected in cases.items():
        plan = choose_kernels(CPU, precision, convolution, cache_dir=tmp_path, measure=never)
        assert (plan.precision, plan.winograd_from, plan.channels_last) == expected
        assert plan.decided == "given"
    assert not cache_path(tmp_path).exists()
    with pytest.raises(ValueError, match="precision"):
        choose_kernels(CPU, "fp16", cache_dir=tmp_path, measure=never)


def test_cache_round_trip_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def measure() -> Timings:
        calls.append(1)
        return fake_timings({"conv4_2": 10.0})

    for variable in ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"):  # set below, one by one
        monkeypatch.delenv(variable, raising=False)
    first = choose_kernels(CPU, threads=1, cache_dir=tmp_path, measure=measure)
    again = choose_kernels(CPU, threads=1, cache_dir=tmp_path, measure=measure)
    assert (first.decided, again.decided, len(calls)) == ("measured", "cached", 1)
    assert again.algorithms == first.algorithms and again.timings == first.timings
    # Another thread count or ISA cap is another machine as far as speed goes.
    choose_kernels(CPU, threads=2, cache_dir=tmp_path, measure=measure)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert choose_kernels(CPU, threads=1, cache_dir=tmp_path, measure=measure).decided == "measured"
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")  # MKL's own cap (Winograd's products)
    assert choose_kernels(CPU, threads=1, cache_dir=tmp_path, measure=measure).decided == "measured"
    assert len(calls) == 4
    entries = json.loads(cache_path(tmp_path).read_text())["entries"]
    assert len(entries) == 4


@pytest.mark.parametrize(
    "content", ["{not json", '{"format": "someone-else", "entries": {}}', "[1, 2]", ""]
)
def test_broken_or_foreign_cache_is_ignored_and_rewritten(tmp_path: Path, content: str) -> None:
    path = cache_path(tmp_path)
    path.write_text(content)
    plan = choose_kernels(CPU, threads=1, cache_dir=tmp_path, measure=fake_timings)
    assert plan.decided == "measured"
    data = json.loads(path.read_text())
    assert data["format"] == "painterly-kernels" and len(data["entries"]) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kernels-")]


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAINTERLY_CACHE_DIR", "/a")
    monkeypatch.setenv("XDG_CACHE_HOME", "/b")
    assert cache_path() == Path("/a/kernels.json")
    monkeypatch.delenv("PAINTERLY_CACHE_DIR")
    assert cache_path() == Path("/b/painterly/kernels.json")


@pytest.mark.parametrize("algorithm", ["winograd2", "winograd4", "winograd6"])
def test_applied_plan_gives_the_exact_features_and_gradient(
    weights: VGGWeights, algorithm: str
) -> None:
    """A float32 plan (channels_last, Winograd from conv2_1, fused ReLU) against the plain
    network: features within 1e-4 and the image's gradient within 1e-3 (relative L2)."""
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "conv4_2", "relu4_2"]
    exact, fast = VGG19Features(weights, up_to=layers), VGG19Features(weights, up_to=layers)
    names = CONV_NAMES[2:10]
    apply_plan(fast, KernelPlan("fp32", tuple((n, algorithm) for n in names), True))
    assert isinstance(fast.convs["conv2_1"], WinogradConv2d) and fast.convs["conv2_1"].m == int(
        algorithm[-1]
    )
    assert fast.convs["conv1_2"].weight.is_contiguous(memory_format=torch.channels_last)
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    grads = []
    for vgg in (exact, fast):
        x = image.clone().requires_grad_(True)
        features = vgg(x, layers)
        # A Gram-like loss on some layers, a plain one on the conv output kept before ReLU.
        loss = sum((f.flatten(2) @ f.flatten(2).transpose(1, 2)).square().sum() for f in
                   (features["relu1_1"], features["relu3_1"])) * 1e-9  # fmt: skip
        loss = loss + features["conv4_2"].square().sum()
        loss.backward()
        grads.append((features, x.grad))
    (f0, g0), (f1, g1) = grads
    for name in layers:
        assert ((f1[name] - f0[name]).norm() / f0[name].norm()).item() < 1e-4, name
    assert g0 is not None and g1 is not None
    assert ((g1 - g0).norm() / g0.norm()).item() < 1e-3
    # The conv output asked for is not overwritten by the in-place ReLU.
    assert (f1["conv4_2"] < 0).any()


def test_plan_can_be_changed_back_to_direct(weights: VGGWeights) -> None:
    vgg = VGG19Features(weights, up_to=["relu3_1"])
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    before = vgg(image, ["relu3_1"])["relu3_1"]
    vgg.set_plan({"conv2_2": "winograd4", "conv3_1": "winograd6"}, channels_last=["conv1_1"])
    vgg.set_plan({})
    assert all(type(c).__name__ == "Conv2d" for c in vgg.convs.values())
    torch.testing.assert_close(vgg(image, ["relu3_1"])["relu3_1"], before)
    with pytest.raises(ValueError, match="algorithm"):
        vgg.set_plan({"conv2_2": "fft"})


def test_bf16_plan_takes_the_steps_of_before(weights: VGGWeights) -> None:
    """apply_plan for bf16 = use_winograd(conv3_1, bf16) + .to(bf16, channels_last)."""
    ours, before = (
        VGG19Features(weights, up_to=["relu4_1"]),
        VGG19Features(weights, up_to=["relu4_1"]),
    )
    apply_plan(
        ours, plan_from_timings(fake_timings(bf16=2.0, bf16_winograd=dict.fromkeys(SHAPES, 1.0)))
    )
    before.use_winograd("conv3_1", torch.bfloat16)
    before.to(dtype=torch.bfloat16, memory_format=torch.channels_last)  # type: ignore[call-overload]
    assert not ours.fused
    for name, conv in before.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], conv, rtol=0, atol=0)
    assert repr(ours) == repr(before)


def test_doctor_report_lists_flags_timings_and_choice(tmp_path: Path) -> None:
    plan = plan_from_timings(fake_timings({"conv3_2": 50.0}))
    report = doctor_report(CPU, 2, cache_dir=tmp_path, plan=plan)
    for word in ("avx2=", "avx512f=", "avx512_bf16=", "amx=", "threads: 2", "conv3_2:"):
        assert word in report
    assert report.splitlines()[-1] == f"choice: {plan.describe()}"
    assert "Winograd F(4×4) from conv3_2" in plan.describe()
    assert kernels.default_threads() >= 1
