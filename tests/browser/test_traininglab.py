"""The training lab of chapter 7: the Simple CNN trained in the reader's browser (headless Chromium).

Against a page that the tests write themselves (the lab's notebook output in a bare HTML page,
opened from disk, so the book need not be built):

* The page's training is PyTorch's training. From the same initial weights, batch and dropout
  masks, one step gives PyTorch's loss and gradients (and, against a float64 computation of the
  same step, gradients at least as accurate as PyTorch's float32 ones), the same batch-norm
  running statistics and, after Adam's update, the same weights; after a few Adam steps the
  weights and the network's outputs still agree. Evaluation mode (running statistics, no
  dropout) gives PyTorch's outputs, in the training code and in the drawing pad's forward pass.
* The lab works as a reader uses it: Start, Pause, Reset, the settings, the curves, the kernels,
  drawing for the trained network; a hidden page pauses; it also starts when inserted the way
  JupyterLab inserts an HTML output, and trains in a sandboxed frame with an opaque origin (the
  strictest kind of frame Colab's outputs live in). test_jupyterlab.py runs it in JupyterLab.
* A benchmark (reported, not a timed test): images per second in the page and in PyTorch on one
  thread of the same CPU, and the test accuracy after 30, 60 and 120 s of training. It fails only
  if the network does not learn at all.

Against the built book (chapter 7's notebook page): the lab runs there, with screenshots in the
light and dark schemes at desktop and phone width, and only that page carries the digits.

Figures go to test-artifacts/traininglab.json and are printed; screenshots to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from browser_support import ARTIFACTS, open_page, screenshot, screenshot_element, watch_errors

import simplecnn as sc
from cnnkit import mnist, traininglab

pytestmark = pytest.mark.browser

PAGE = "notebooks/07-simple-cnn-mnist.html"
REPORT = ARTIFACTS.parent / "traininglab.json"
LR, BETAS, SMOOTHING = (
    traininglab.DEFAULTS["lr"],
    traininglab.DEFAULTS["betas"],
    traininglab.FAST.label_smoothing,
)
N, STEPS = 32, 5  # the batch of the parity tests, and the Adam steps compared
ROOT = ".scnn-train"


def _report(**figures):
    """Add ``figures`` to test-artifacts/traininglab.json and print them."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(REPORT.read_text()) if REPORT.is_file() else {}
    record.update(figures)
    REPORT.write_text(json.dumps(record, indent=1) + "\n")
    print("training lab:", json.dumps(figures))


def _b64(array) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _f32(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), "<f4")


# JavaScript helpers for page.evaluate: base64 <-> typed arrays, and running steps.
JS_HELPERS = """
  const bytes = b64 => Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const f32 = b64 => new Float32Array(bytes(b64).buffer);
  const enc = a => { const b = new Uint8Array(Float32Array.from(a).buffer); let s = "";
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    return btoa(s); };
  const encState = st => { const out = {}; for (const k in st) if (typeof st[k] !== "number") out[k] = enc(st[k]); return out; };
  const decState = st => { const out = {}; for (const k in st) out[k] = f32(st[k]); return out; };
"""


# ---------------------------------------------------------------------------------------------
# The page the tests write: the notebook output in a bare HTML page
# ---------------------------------------------------------------------------------------------


def _standalone(folder: Path) -> Path:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Training lab</title>"
        "</head><body><main><h1>Training lab</h1>" + traininglab.training_lab().data + "</main></body></html>"
    )
    path = folder / "traininglab.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab_file(tmp_path_factory) -> Path:
    return _standalone(tmp_path_factory.mktemp("traininglab"))


@pytest.fixture
def lab_page(browser, lab_file):
    """The standalone lab opened from disk (file://), ready to start."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, lab_file.parent.as_uri() + "/")
    page.errors = watch_errors(page)
    page.goto(lab_file.as_uri())
    _wait_ready(page)
    yield page
    context.close()


def _lab(page):
    labs = page.locator(ROOT)
    assert labs.count() == 1, f"expected one training lab, found {labs.count()}"
    return labs.first


def _wait_ready(page, timeout=30_000):
    lab = _lab(page)
    page.wait_for_function(
        "el => el.simplecnnState && (el.simplecnnState.status === 'ready' || el.simplecnnState.error)",
        arg=lab.element_handle(),
        timeout=timeout,
    )
    state = _state(lab)
    assert not state["error"], state["error"]
    return lab


def _state(lab) -> dict:
    return lab.evaluate("el => el.simplecnnState")


# ---------------------------------------------------------------------------------------------
# PyTorch's side of the parity tests
# ---------------------------------------------------------------------------------------------


class GivenDropout(nn.Module):
    """Dropout with a given 0/1 mask: ``x * (mask / (1 - p))``, nn.Dropout's own arithmetic in
    training mode (test_given_masks_are_nn_dropouts_arithmetic shows they are the same)."""

    def __init__(self, p: float):
        super().__init__()
        self.p, self.mask = p, None

    def forward(self, x):
        return x * self.mask.div(1 - self.p) if self.training else x


def test_given_masks_are_nn_dropouts_arithmetic():
    x = torch.randn(16, 32, 12, 12)
    for p in (0.45, 0.35):
        torch.manual_seed(7)
        expected = nn.Dropout(p).train()(x)
        torch.manual_seed(7)
        mask = torch.empty_like(x).bernoulli_(1 - p)
        given = GivenDropout(p)
        given.mask = mask
        assert torch.equal(given(x), expected)


def _parity_setup(steps: int = STEPS):
    """A seeded Simple CNN, ``steps`` batches of the lab's own training digits, dropout masks."""
    torch.manual_seed(0)
    model = sc.SimpleCNN()
    x_train, y_train, x_test, y_test = traininglab.read_data()
    x = traininglab.standardize(x_train[: N * steps])
    y = torch.from_numpy(y_train[: N * steps].astype(np.int64))
    g = torch.Generator().manual_seed(1)
    masks = [
        (
            (torch.rand(N, 32, 12, 12, generator=g) >= 0.45).float(),
            (torch.rand(N, 64, 4, 4, generator=g) >= 0.35).float(),
        )
        for _ in range(steps)
    ]
    return model, x, y, masks, traininglab.standardize(x_test[:200]), y_test[:200]


def _with_masks(model):
    model.features.drop1, model.features.drop2 = GivenDropout(0.45), GivenDropout(0.35)
    return model


def _state_b64(model) -> dict:
    return {
        k: _b64(v.detach().float().numpy()) for k, v in model.state_dict().items() if v.is_floating_point()
    }


def _pytorch_steps(model, x, y, masks, steps):
    """PyTorch trains ``model`` (masks given) ``steps`` steps; returns what the tests compare."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=SMOOTHING)
    model.train()
    out = {"losses": []}
    for s in range(steps):
        model.features.drop1.mask, model.features.drop2.mask = masks[s]
        loss = loss_fn(model(x[s * N : (s + 1) * N]), y[s * N : (s + 1) * N])
        optimizer.zero_grad()
        loss.backward()
        out["losses"].append(loss.item())
        if s == 0:
            out["loss"] = loss.item()
            out["grads"] = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        optimizer.step()
        if s == 0:
            out["after1"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out["final"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return out


RUN_STEPS = (
    """async ([init, xs, ys, m1, m2, n, steps, lr, betas, smoothing]) => {"""
    + JS_HELPERS
    + """
  const T = SimpleCNNTrain, net = T.createNet(0, {lr: lr, betas: betas, labelSmoothing: smoothing});
  T.importState(net, decState(init));
  const x = f32(xs), y = bytes(ys), mask1 = bytes(m1), mask2 = bytes(m2), out = {losses: []};
  const per1 = n * 32 * 144, per2 = n * 64 * 16;
  for (let s = 0; s < steps; s++) {
    const masks = {drop1: mask1.subarray(s * per1, (s + 1) * per1), drop2: mask2.subarray(s * per2, (s + 1) * per2)};
    const t0 = performance.now();
    const r = T.trainStep(net, x.subarray(s * n * 784), y.subarray(s * n), n, masks);
    out.losses.push(r.loss);
    if (s === 0) { out.ms = performance.now() - t0; out.after1 = encState(T.exportState(net, true)); }
  }
  out.final = encState(T.exportState(net));
  // training-mode outputs of the final weights on the first batch, with its masks (batch norm
  // uses the batch's statistics, so the conv biases cancel here)
  const w = T.forward(net, x.subarray(0, n * 784), n, true,
                      {drop1: mask1.subarray(0, per1), drop2: mask2.subarray(0, per2)});
  out.trainLogits = enc(w);
  return out;
}"""
)


def _run_in_page(page, model, x, y, masks, steps):
    m1 = torch.stack([m[0] for m in masks[:steps]]).numpy().astype(np.uint8)
    m2 = torch.stack([m[1] for m in masks[:steps]]).numpy().astype(np.uint8)
    args = [
        _state_b64(model),
        _b64(x.numpy().astype("<f4")),
        _b64(y.numpy().astype(np.uint8)),
        _b64(m1),
        _b64(m2),
        N,
        steps,
        LR,
        list(BETAS),
        SMOOTHING,
    ]
    return page.evaluate(RUN_STEPS, args)


def _diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


CONV_BIASES = ("features.conv1.bias", "features.conv2.bias")


def test_standardisation_matches_pytorch(lab_page):
    table = lab_page.evaluate(
        "([m, s]) => Array.from(SimpleCNNTrain.standardTable(m, s))", [traininglab.MEAN, traininglab.STD]
    )
    expected = mnist.standardize(torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)).numpy().ravel()
    assert np.array_equal(np.array(table, "<f4"), expected)


def test_one_step_gives_pytorchs_loss_gradients_statistics_and_weights(lab_page):
    model, x, y, masks, _, _ = _parity_setup(1)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    js = _run_in_page(lab_page, model, x, y, masks, 1)
    ref = _pytorch_steps(_with_masks(model), x, y, masks, 1)
    # the same step in float64: how far each float32 computation is from the exact gradient
    exact = _with_masks(sc.SimpleCNN()).double()
    exact.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in init.items()})
    exact.features.drop1.mask, exact.features.drop2.mask = (m.double() for m in masks[0])
    nn.CrossEntropyLoss(label_smoothing=SMOOTHING)(exact(x[:N].double()), y[:N]).backward()
    exact_grads = {n: p.grad for n, p in exact.named_parameters()}

    loss_diff = abs(js["losses"][0] - ref["loss"])
    assert loss_diff <= 1e-6 * abs(ref["loss"]), (js["losses"][0], ref["loss"])
    after1 = {k: _f32(v) for k, v in js["after1"].items()}
    gradients = {}
    for name, g_ref in ref["grads"].items():
        g_js, g_64 = after1[name + ".grad"], exact_grads[name].numpy().ravel()
        g_ref = g_ref.numpy().ravel()
        scale = float(np.abs(g_64).max())
        gradients[name] = dict(
            scale=scale, page_vs_pytorch=_diff(g_js, g_ref), page_vs_float64=_diff(g_js, g_64),
            pytorch_vs_float64=_diff(g_ref, g_64),
        )  # fmt: skip
        if name in CONV_BIASES:
            # before batch norm a bias changes nothing (the batch's mean takes it away): its exact
            # gradient is 0, and both float32 computations give only rounding error
            weights = float(np.abs(exact_grads[name.replace("bias", "weight")].numpy()).max())
            assert scale < 1e-12 and max(np.abs(g_js).max(), np.abs(g_ref).max()) < 1e-4 * weights, name
            continue
        # float32 tolerance: within 2e-4 of the tensor's largest gradient (conv1's gradient sums
        # 18,432 products per weight for a batch of 32; PyTorch's float32 sum is off by about
        # 1.4e-4 of it), and at least as close to the float64 gradient as PyTorch's own
        assert gradients[name]["page_vs_pytorch"] <= 2e-4 * scale, (name, gradients[name])
        assert gradients[name]["page_vs_float64"] <= gradients[name]["pytorch_vs_float64"] + 1e-7 * scale, (
            name,
            gradients[name],
        )
    # batch norm's running statistics after the step (computed before Adam moves anything)
    stats = {}
    for name in ("bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"):
        key = "features." + name
        stats[name] = _diff(after1[key], ref["after1"][key].numpy().ravel())
        assert stats[name] < 1e-6, (name, stats[name])
    assert after1["features.bn1.num_batches_tracked"][0] == 1
    # Adam's first step moves each weight by lr * g / (|g| + 1e-8): the page's weights follow
    # from the page's gradients and PyTorch's from PyTorch's, so the two differ only where the
    # gradients differ, where a gradient is as small as float32's rounding error
    weights, odd = {}, {}
    for name, _ in model.named_parameters():
        w0 = init[name].numpy().ravel().astype(np.float64)
        for w, grad in (
            (after1[name], after1[name + ".grad"]),
            (ref["after1"][name].numpy().ravel(), ref["grads"][name].numpy().ravel()),
        ):
            grad = grad.astype(np.float64)
            adam = w0 - LR * grad / (np.abs(grad) + 1e-8)
            assert _diff(w, adam) < 2e-7, (name, _diff(w, adam))
        d = np.abs(after1[name].astype(np.float64) - ref["after1"][name].numpy().ravel())
        weights[name], odd[name] = float(d.max()), int((d > 1e-6).sum())
        if name not in CONV_BIASES:
            assert odd[name] <= max(1, d.size // 10_000), (name, odd[name])
    _report(
        parity_batch=N,
        one_step_loss_page=js["losses"][0],
        one_step_loss_pytorch=ref["loss"],
        one_step_gradients=gradients,
        one_step_running_statistics_max_difference=stats,
        one_step_weights_max_difference=weights,
        one_step_weights_off_by_more_than_1e6=odd,
        one_step_ms_in_page=js["ms"],
    )
    assert not lab_page.errors, lab_page.errors


def test_adam_steps_give_pytorchs_weights(lab_page):
    model, x, y, masks, _, _ = _parity_setup(STEPS)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    js = _run_in_page(lab_page, model, x, y, masks, STEPS)
    ref = _pytorch_steps(_with_masks(model), x, y, masks, STEPS)
    # the same steps in float64: the tolerance of float32 after a few Adam steps
    exact = _with_masks(sc.SimpleCNN()).double()
    exact.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in init.items()})
    exact_masks = [tuple(m.double() for m in pair) for pair in masks]
    ref64 = _pytorch_steps(exact, x.double(), y, exact_masks, STEPS)
    final = {k: _f32(v) for k, v in js["final"].items()}
    assert final["features.bn1.num_batches_tracked"][0] == STEPS
    report = {}
    for name, value in ref["final"].items():
        if value.is_floating_point():
            expected, exact_value = (
                value.numpy().ravel().astype(np.float64),
                ref64["final"][name].numpy().ravel(),
            )
            d = np.abs(final[name] - expected)
            report[name] = dict(
                page_vs_pytorch=float(d.max()), median=float(np.median(d)), scale=float(np.abs(expected).max()),
                page_vs_float64=_diff(final[name], exact_value), pytorch_vs_float64=_diff(expected, exact_value),
            )  # fmt: skip
    # the same network: training-mode outputs (batch statistics, the first batch's masks)
    trained = _with_masks(sc.SimpleCNN())
    trained.load_state_dict(ref["final"])
    trained.train()
    trained.features.drop1.mask, trained.features.drop2.mask = masks[0]
    with torch.no_grad():
        logits = trained(x[:N]).numpy().ravel()
    out_diff = _diff(_f32(js["trainLogits"]), logits)
    _report(
        adam_steps=STEPS,
        adam_losses_page=js["losses"],
        adam_losses_pytorch=ref["losses"],
        adam_final_differences=report,
        adam_final_train_mode_logits_max_difference=out_diff,
    )
    assert _diff(js["losses"], ref["losses"]) < 1e-5 * max(ref["losses"]), (js["losses"], ref["losses"])
    assert out_diff < 1e-4 * max(1.0, float(np.abs(logits).max())), out_diff
    for name, r in report.items():
        if name in CONV_BIASES:
            # their gradient is rounding error (see above), so Adam moves them by up to about lr
            # a step in either direction; batch norm takes them away again in training mode
            assert r["page_vs_pytorch"] <= 2 * STEPS * LR, (name, r)
        elif name.endswith("running_mean"):
            # the running mean follows the conv biases (it averages the conv outputs)
            assert r["page_vs_pytorch"] <= STEPS * LR, (name, r)
        else:
            # Adam divides each gradient by its own size, so a weight whose gradient is small
            # moves by an amount that float32's rounding of that gradient decides: the page must
            # stay as close to the float64 run as PyTorch's float32 run does
            assert r["page_vs_float64"] <= 1.5 * r["pytorch_vs_float64"] + 1e-6, (name, r)
            assert r["median"] < 1e-5 * max(1.0, r["scale"]), (name, r)
    assert not lab_page.errors, lab_page.errors


EVAL = (
    """([state, xs, n]) => {"""
    + JS_HELPERS
    + """
  const T = SimpleCNNTrain, net = T.createNet(0), st = decState(state);
  T.importState(net, st);
  const x = f32(xs), logits = T.evaluate(net, x, n, 50);
  // the drawing pad's path: the digit lab's forward pass (simplecnn.js) with these weights
  const model = T.inferenceModel(st), probs = [];
  for (let i = 0; i < n; i++) probs.push(...SimpleCNN.forward(model, x.subarray(784 * i, 784 * (i + 1))).probs);
  return {logits: enc(logits), probs: probs};
}"""
)


def test_evaluation_mode_gives_pytorchs_outputs(lab_page):
    """Weights and running statistics that PyTorch trained, in evaluation mode in the page."""
    model, x, y, _, x_test, _ = _parity_setup(STEPS)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS)
    model.train()
    for s in range(STEPS):  # a few steps, so the running statistics are not the initial 0 and 1
        loss = nn.functional.cross_entropy(model(x[s * N : (s + 1) * N]), y[s * N : (s + 1) * N])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(x_test).numpy()
    js = lab_page.evaluate(EVAL, [_state_b64(model), _b64(x_test.numpy().astype("<f4")), len(x_test)])
    logit_diff = _diff(_f32(js["logits"]).reshape(-1, 10), logits)
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    prob_diff = _diff(np.array(js["probs"]).reshape(-1, 10), probs)
    same = int((_f32(js["logits"]).reshape(-1, 10).argmax(1) == logits.argmax(1)).sum())
    _report(
        eval_images=len(x_test),
        eval_logits_max_difference=logit_diff,
        eval_pad_probability_max_difference=prob_diff,
    )
    assert logit_diff < 1e-4 * max(1.0, float(np.abs(logits).max())), logit_diff
    assert prob_diff < 1e-5 and same == len(x_test)
    assert not lab_page.errors, lab_page.errors


def test_shifts_move_each_digit_as_sc_random_shift_does(lab_page):
    """The recipe's augmentation: each digit moves by up to one pixel each way, background comes in."""
    x = traininglab.standardize(traininglab.read_data()[0][:60])
    fill = float(x.amin())
    out = lab_page.evaluate(
        "([xs, n, fill]) => {"
        + JS_HELPERS
        + " const x = f32(xs); SimpleCNNTrain.shiftImages(x, n, 1, SimpleCNNTrain.generator(3), fill); return enc(x); }",
        [_b64(x.numpy().astype("<f4")), len(x), fill],
    )
    out = torch.from_numpy(_f32(out).copy()).reshape(x.shape)
    padded = nn.functional.pad(x, (1, 1, 1, 1), value=fill)  # as sc.random_shift pads
    moves = set()
    for i in range(len(x)):
        found = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(out[i, 0], padded[i, 0, 1 + dy : 29 + dy, 1 + dx : 29 + dx])
        ]
        assert found, f"digit {i} is not a shift of its original"
        moves.update(found)
    assert len(moves) == 9  # every move of up to one pixel occurs


# ---------------------------------------------------------------------------------------------
# The lab as a reader uses it
# ---------------------------------------------------------------------------------------------


def _wait(page, condition: str, timeout=60_000, arg=None):
    page.wait_for_function(
        "([el, arg]) => { const s = el.simplecnnState; return " + condition + "; }",
        arg=[_lab(page).element_handle(), arg],
        timeout=timeout,
    )


def _weights(lab) -> dict:
    """The weights the page's drawing pad uses (those of the last pause), by PyTorch's names."""
    state = lab.evaluate("el => {" + JS_HELPERS + " return encState(el.simplecnnTrainingLab.weights()); }")
    return {k: torch.from_numpy(_f32(v).copy()) for k, v in state.items()}


def _draw(lab, strokes):
    pad = lab.locator("canvas.scnn-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    mouse = lab.page.mouse
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        mouse.move(*points[0])
        mouse.down()
        for p in points[1:]:
            mouse.move(*p, steps=8)
        mouse.up()


def _pictures(lab):
    """The kernels of conv1 as drawn, and what training changed in them, as data URLs."""
    return tuple(
        lab.locator(f"canvas.{name}").evaluate("c => c.toDataURL()")
        for name in ("scnn-kernels-now", "scnn-kernel-change")
    )


SEVEN = [[(0.22, 0.22), (0.75, 0.2), (0.62, 0.45), (0.45, 0.85)]]


def _pytorch_probs(weights: dict, x: torch.Tensor) -> np.ndarray:
    model = sc.SimpleCNN()
    state = model.state_dict()
    state.update({k: v.reshape(state[k].shape) for k, v in weights.items() if k in state})
    model.load_state_dict(state)
    return sc.predict(model, x).numpy()


def _check_drawing(lab):
    """The page's reading of its drawing pad equals PyTorch's, with the weights it trained."""
    state = _state(lab)
    x = torch.tensor(lab.evaluate("el => Array.from(el.simplecnnTrainingLab.input())"), dtype=torch.float32)
    probs = _pytorch_probs(_weights(lab), x.reshape(1, 1, 28, 28))[0]
    assert state["prediction"] == int(probs.argmax())
    diff = _diff(state["probs"], probs)
    assert diff < 1e-5, diff
    return diff


def test_start_pause_draw_and_reset(lab_page):
    page, lab = lab_page, _lab(lab_page)
    state = _state(lab)
    assert state["seen"] == 0 and len(state["accuracy"]) <= 1
    assert (
        lab.locator("button.scnn-pause").is_disabled() and not lab.locator("button.scnn-start").is_disabled()
    )
    assert lab.get_by_role("combobox", name="Learning rate").input_value() == str(LR)
    assert lab.get_by_role("checkbox", name="Shift each digit by up to 1 pixel").is_checked()
    assert lab.get_by_role("combobox", name="Batch size").input_value() == str(
        traininglab.DEFAULTS["batch_size"]
    )
    _wait(page, "s.accuracy.length === 1")  # the untrained network: a guess
    assert 0.0 <= _state(lab)["accuracy"][0]["accuracy"] <= 0.3
    kernels_before, change_before = _pictures(lab)

    lab.get_by_role("button", name="Start").click()
    _wait(page, "s.steps >= 8")
    lab.get_by_role("button", name="Pause").click()
    _wait(page, "s.status === 'paused'")
    state = _state(lab)
    assert state["seen"] == 32 * state["steps"] and state["imagesPerSecond"] > 0
    assert len(state["losses"]) == state["steps"] and state["losses"][-1][1] < 2.3
    kernels, change = _pictures(lab)
    assert kernels != kernels_before and change != change_before  # the kernels and what changed in them
    assert "training images seen" in lab.locator(".scnn-counters").inner_text()
    # paused: the steps stop, the pad reads drawings for the network as it is now
    steps = state["steps"]
    page.wait_for_timeout(1500)
    assert _state(lab)["steps"] == steps
    assert lab.locator(".scnn-draw").is_visible()
    _draw(lab, SEVEN)
    _wait(page, "s.prediction !== null")
    diffs = [_check_drawing(lab)]
    lab.get_by_role("button", name="A test digit").click()
    diffs.append(_check_drawing(lab))
    lab.get_by_role("button", name="Clear").click()
    assert _state(lab)["prediction"] is None
    screenshot_element(lab, "training-lab-standalone-paused")

    # a new learning rate and batch size, then on: the counters go on from where they were
    lab.get_by_role("combobox", name="Learning rate").select_option(str(1e-3))
    lab.get_by_role("combobox", name="Batch size").select_option("16")
    lab.get_by_role("checkbox", name="Shift each digit by up to 1 pixel").uncheck()
    lab.get_by_role("button", name="Start").click()
    _wait(page, "s.steps >= arg", arg=steps + 3)
    # a hidden page pauses
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    _wait(page, "s.status === 'paused'")
    state = _state(lab)
    assert state["seen"] > 32 * steps and (state["seen"] - 32 * steps) % 16 == 0
    page.evaluate("delete document.hidden")

    # Reset: back to the same random start
    lab.get_by_role("button", name="Reset").click()
    _wait(page, "s.status === 'ready' && s.seen === 0")
    assert _pictures(lab) == (kernels_before, change_before)
    assert lab.locator(".scnn-draw").is_hidden()
    _report(drawing_max_probability_difference=max(diffs))
    assert not page.errors, page.errors
    assert not page.problems.all(), page.problems.all()


def test_the_lab_starts_as_a_jupyterlab_output(browser, lab_file, tmp_path):
    """JupyterLab (and Colab's output frame) put an HTML output into the page with innerHTML and
    then run its scripts; the lab must start that way too."""
    markup = traininglab.training_lab().data
    (tmp_path / "markup.json").write_text(json.dumps(markup))
    host = tmp_path / "host.html"
    host.write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>host</title></head>"
        "<body><div id='output'></div></body></html>"
    )
    context = browser.new_context()
    try:
        page = open_page(context, tmp_path.as_uri() + "/")
        errors = watch_errors(page)
        page.goto(host.as_uri())
        page.evaluate(
            """markup => {
                 const out = document.getElementById('output');
                 out.innerHTML = markup;
                 for (const old of out.querySelectorAll('script:not([type])')) {
                   const s = document.createElement('script');
                   s.textContent = old.textContent;
                   old.replaceWith(s);
                 }
               }""",
            markup,
        )
        lab = _wait_ready(page)
        lab.get_by_role("button", name="Start").click()
        _wait(page, "s.steps >= 2")
        lab.get_by_role("button", name="Pause").click()
        _wait(page, "s.status === 'paused'")
        assert not errors, errors
    finally:
        context.close()


def test_the_lab_trains_in_a_sandboxed_output_frame(browser, lab_file, tmp_path):
    """Colab shows each cell's output in a sandboxed frame of another origin. The strictest such
    frame (scripts allowed, an opaque origin, no same-origin rights) must run the lab too: its
    workers come from Blob URLs of the frame itself, and it reads nothing from the parent page."""
    import html

    host = tmp_path / "sandbox.html"
    host.write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>host</title></head><body>"
        "<iframe title='output' sandbox='allow-scripts' style='width:1100px;height:1400px' srcdoc=\""
        + html.escape(lab_file.read_text(encoding="utf-8"), quote=True)
        + '"></iframe></body></html>',
        encoding="utf-8",
    )
    context = browser.new_context(viewport={"width": 1200, "height": 1500})
    try:
        page = open_page(context, tmp_path.as_uri() + "/")
        page.goto(host.as_uri())
        frame = page.locator("iframe").element_handle().content_frame()
        assert frame.evaluate("() => window.origin") == "null"  # an opaque origin, as sandboxed
        lab = _wait_ready(frame)
        lab.get_by_role("button", name="Start").click()
        _wait(frame, "s.steps >= 3")
        lab.get_by_role("button", name="Pause").click()
        _wait(frame, "s.status === 'paused'")
        assert not _state(lab)["error"]
        screenshot(page, "traininglab-sandboxed-frame")
        assert not page.problems.all(), page.problems.all()
    finally:
        context.close()


# ---------------------------------------------------------------------------------------------
# The benchmark: speed and accuracy over time (reported; fails only if nothing is learnt)
# ---------------------------------------------------------------------------------------------


def _pytorch_images_per_second(seconds: float = 8.0) -> float:
    """Training images per second of the Simple CNN in PyTorch on one thread, float32, the lab's
    batch size and settings, on the lab's digits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x_train, y_train, _, _ = traininglab.read_data()
        x, y = traininglab.standardize(x_train), torch.from_numpy(y_train.astype(np.int64))
        torch.manual_seed(0)
        model = sc.SimpleCNN().train()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=SMOOTHING)
        B, seen, start, i = traininglab.DEFAULTS["batch_size"], 0, None, 0
        while start is None or time.perf_counter() - start < seconds:
            if i == 3:  # after a few warm-up steps
                start, seen = time.perf_counter(), 0
            b = slice((i * B) % (len(y) - B), (i * B) % (len(y) - B) + B)
            loss = loss_fn(model(x[b]), y[b])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += B
            i += 1
        return seen / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@pytest.mark.slow
def test_benchmark_speed_and_accuracy_over_time(lab_page):
    load_before = os.getloadavg()
    pytorch_ips = _pytorch_images_per_second()
    page, lab = lab_page, _lab(lab_page)
    lab.get_by_role("button", name="Start").click()
    _wait(page, "s.milestones[120] !== undefined", timeout=200_000)
    lab.get_by_role("button", name="Pause").click()
    _wait(page, "s.status === 'paused'")
    state = _state(lab)
    milestones = {int(t): m for t, m in state["milestones"].items()}
    figures = dict(
        cpu=_cpu_name(),
        cores=os.cpu_count(),
        load_average_before=[round(v, 2) for v in load_before],
        load_average_after=[round(v, 2) for v in os.getloadavg()],
        browser=page.context.browser.version,
        pytorch=torch.__version__,
        pytorch_images_per_second_one_thread=round(pytorch_ips, 1),
        page_images_per_second=round(state["imagesPerSecond"], 1),
        page_images_seen=state["seen"],
        page_seconds=round(state["clock"] / 1000, 1),
        test_accuracy_at={t: dict(accuracy=m["accuracy"], images=m["seen"]) for t, m in milestones.items()},
        test_accuracy_curve=[
            [round(a["clock"] / 1000, 1), a["seen"], a["accuracy"]] for a in state["accuracy"]
        ],
        first_measured_at_or_above_95=next(
            (
                {"seconds": round(a["clock"] / 1000, 1), "images": a["seen"]}
                for a in state["accuracy"]
                if a["accuracy"] >= 0.95
            ),
            None,
        ),
        test_evaluations=state["evaluations"],
        test_evaluation_ms=state["evalMs"],
        batch_size=traininglab.DEFAULTS["batch_size"],
        learning_rate=LR,
    )
    _report(benchmark=figures)
    screenshot_element(lab, "training-lab-standalone-after-120s")
    assert set(milestones) == set(traininglab.MILESTONES)
    assert milestones[120]["accuracy"] >= 0.5, f"the network did not learn: {milestones}"
    assert not page.errors, page.errors


# ---------------------------------------------------------------------------------------------
# In the built book: chapter 7's notebook page
# ---------------------------------------------------------------------------------------------


def _open_in_book(page, url):
    errors = watch_errors(page)
    page.goto(url, wait_until="networkidle")
    lab = _lab(page)
    lab.scroll_into_view_if_needed()
    _wait_ready(page)
    return lab, errors


def test_the_lab_in_the_book_light_dark_and_phone(browser, book_url):
    shots = []
    for name, viewport in (
        ("desktop", {"width": 1280, "height": 900}),
        ("phone", {"width": 390, "height": 844}),
    ):
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport=viewport, color_scheme=scheme, is_mobile=name == "phone")
            try:
                page = open_page(context, book_url)
                lab, errors = _open_in_book(page, book_url + PAGE)
                page.wait_for_function("s => document.documentElement.dataset.theme === s", arg=scheme)
                lab.get_by_role("button", name="Start").click()
                _wait(page, "s.steps >= 4 && s.accuracy.length >= 1")
                lab.get_by_role("button", name="Pause").click()
                _wait(page, "s.status === 'paused'")
                _draw(lab, SEVEN)
                _wait(page, "s.prediction !== null")
                _check_drawing(lab)
                width = lab.evaluate("el => el.getBoundingClientRect().width")
                assert width <= viewport["width"], f"the lab is wider than the {name} screen"
                shot = f"training-lab-{name}-{scheme}"
                if name == "phone":
                    lab.scroll_into_view_if_needed()
                    lab.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
                else:
                    screenshot_element(lab, shot)
                shots.append(shot)
                if (name, scheme) == ("desktop", "light"):
                    screenshot(page, "training-lab-page")
                assert not errors, errors
                assert not page.problems.all(), page.problems.all()
            finally:
                context.close()
    assert len(shots) == 4


def test_the_lab_works_from_the_book_on_disk(browser, book_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        base = book_dir.resolve().as_uri() + "/"
        page = open_page(context, base)
        lab, errors = _open_in_book(page, base + PAGE)
        lab.get_by_role("button", name="Start").click()
        _wait(page, "s.steps >= 2")
        lab.get_by_role("button", name="Pause").click()
        _wait(page, "s.status === 'paused'")
        assert not errors, errors
        assert not page.problems.blocked_requests, page.problems.blocked_requests
    finally:
        context.close()


def test_only_chapter_7s_notebook_carries_the_digits(book_dir):
    blob = traininglab.data_path().read_bytes()
    marker = base64.b64encode(blob[:3000]).decode("ascii")
    pages = sorted(
        p.relative_to(book_dir).as_posix()
        for p in book_dir.rglob("*.html")
        if marker in p.read_text(encoding="utf-8")
    )
    assert pages == [PAGE], pages
    markup = traininglab.training_lab().data
    size = (book_dir / PAGE).stat().st_size
    _report(
        book_page=PAGE,
        book_page_bytes=size,
        lab_output_bytes=len(markup.encode()),
        data_file_bytes=len(blob),
        data_base64_bytes=4 * ((len(blob) + 2) // 3),
    )
    assert size < len(markup.encode()) + 3_000_000  # the lab, plus an ordinary notebook page
