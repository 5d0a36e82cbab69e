"""Tests of cnnkit.digitlab: the digit lab's preprocessing (which static/digitlab.js repeats; the
browser tests compare the two), the export of the weights, and its tie to the checkpoint."""

import hashlib
import json
import math

import numpy as np
import pytest
import torch

import simplecnn as sc
from cnnkit import checkpoints, cli, digitlab
from cnnkit.mnist import MEAN, STD

# --- preprocessing --------------------------------------------------------------------------------


def stroke_one(size=14):
    """A vertical stroke: the simplest digit to draw."""
    g = torch.zeros(size, size)
    g[2:12, 7] = 1
    return g


def ink_rows_cols(image):
    """The rows and columns of a (1, 1, 28, 28) standardised image that hold ink."""
    p = image[0, 0] * STD + MEAN
    return torch.nonzero(p.sum(1) > 1e-4).flatten(), torch.nonzero(p.sum(0) > 1e-4).flatten()


def centre_of_mass(image):
    p = (image[0, 0] * STD + MEAN).double()
    idx = torch.arange(28, dtype=torch.float64)
    return ((p.sum(1) @ idx) / p.sum()).item(), ((p.sum(0) @ idx) / p.sum()).item()


@pytest.mark.parametrize("n_in, n_out", [(112, 20), (20, 20), (7, 20), (30, 7), (1, 20), (96, 1)])
def test_area_weights_average_what_each_pixel_covers(n_in, n_out):
    w = digitlab.area_weights(n_in, n_out)
    assert w.shape == (n_out, n_in) and (w >= 0).all()
    assert np.allclose(w.sum(1), 1)  # an average: a flat row stays flat
    assert np.allclose(w.sum(0), n_out / n_in)  # every input pixel counts, in equal shares
    if n_in == n_out:
        assert np.array_equal(w, np.eye(n_in))
    if n_in % n_out == 0:  # an integer factor: plain block means
        f = n_in // n_out
        assert np.allclose(w, np.kron(np.eye(n_out), np.full((1, f), 1 / f)))


def test_scaled_size_keeps_the_aspect_ratio_and_rounds_halves_up():
    assert digitlab.scaled_size(60, 30) == (20, 10)
    assert digitlab.scaled_size(12, 48) == (5, 20)
    assert digitlab.scaled_size(5, 8) == (13, 20)  # 12.5 rounds up, as Math.floor(x + 0.5) does
    assert digitlab.scaled_size(1, 200) == (1, 20)  # never thinner than one pixel
    assert [digitlab.round_half_up(x) for x in (0.5, 1.5, 2.5, 2.4999)] == [1, 2, 3, 2]


def test_preprocess_follows_the_mnist_recipe():
    image = digitlab.preprocess(stroke_one())
    assert image.shape == (1, 1, 28, 28) and image.dtype == torch.float32
    p = image[0, 0] * STD + MEAN
    assert p.min().item() == pytest.approx(0.0, abs=1e-6) and p.max().item() <= 1.0 + 1e-6
    rows, cols = ink_rows_cols(image)
    assert len(rows) == digitlab.BOX  # the taller side is scaled to 20 pixels
    row, col = centre_of_mass(image)
    assert row == pytest.approx(13.5, abs=0.5) and col == pytest.approx(13.5, abs=0.5)
    assert torch.allclose(
        image, torch.from_numpy((digitlab.frame(stroke_one()) - MEAN) / STD).float()[None, None]
    )


def test_preprocess_keeps_the_shape_of_a_wide_or_tall_drawing():
    for h, w, expected in ((60, 30, (20, 10)), (12, 48, (5, 20))):
        ink = np.zeros((100, 100))
        ink[7 : 7 + h, 30 : 30 + w] = 1
        rows, cols = ink_rows_cols(digitlab.preprocess(ink))
        assert (len(rows), len(cols)) == expected


def test_preprocess_ignores_where_and_on_what_grid_you_draw():
    g = torch.zeros(14, 14)
    g[1:6, 1:4] = 1  # a small blob in the top-left corner
    h = torch.zeros(20, 30)
    h[11:16, 20:23] = 1  # the same blob elsewhere, on a larger grid
    assert torch.allclose(digitlab.preprocess(g), digitlab.preprocess(h), atol=1e-6)


def test_a_test_digit_drawn_on_the_grid_comes_back_unchanged():
    # A digit whose ink is 20 rows tall and centred: drawn at 4 cells per pixel, area averaging
    # by 4 gives back its pixels (up to float32 rounding), and the centre of mass puts them back
    # in place.
    rng = np.random.default_rng(0)
    digit = np.zeros((28, 28))
    block = rng.random((20, 12)) * 0.9 + 0.1
    block = (block + block[::-1, ::-1]) / 2  # point-symmetric: centre of mass in the middle
    digit[4:24, 8:20] = block
    again = digitlab.frame(digitlab.image_to_ink(digit))
    assert np.array_equal(again > 0, digit > 0) and np.abs(again - digit).max() < 1e-6
    standardised = torch.from_numpy((digit - MEAN) / STD).float()
    assert np.allclose(digitlab.image_to_ink(standardised), digitlab.image_to_ink(digit), atol=1e-6)


def test_a_centre_of_mass_on_a_half_pixel_rounds_the_same_way_every_time():
    # Uniform ink 21 rows tall and 40 wide becomes 11 x 20 pixels (10.5 rounds up), all 1 up to
    # rounding error. Its centre of mass is row 5, so the top row is 13.5 - 5 + 0.5 = 9 exactly:
    # without the margin TIE, an error of 1e-16 in the sums could make it 8 in one language only.
    ink = np.zeros((50, 50))
    ink[3:24, 5:45] = 1
    image = digitlab.frame(ink)
    rows, cols = np.flatnonzero(image.sum(1) > 0), np.flatnonzero(image.sum(0) > 0)
    assert (rows[0], len(rows), cols[0], len(cols)) == (9, 11, 4, 20)

    def top_row(lighter: float) -> int:  # the first ink row when the top row of ink is a bit lighter
        faded = ink.copy()
        faded[3] *= 1 - lighter
        return int(np.flatnonzero(digitlab.frame(faded).sum(1) > 0)[0])

    # a centre of mass a rounding error below the half pixel still counts as on it; a real shift,
    # however small, moves the digit
    assert top_row(1e-12) == 9 and top_row(1e-6) == 8


def test_preprocess_refuses_bad_drawings():
    with pytest.raises(ValueError, match="empty"):
        digitlab.preprocess(torch.zeros(14, 14))
    with pytest.raises(ValueError, match="2-D grid"):
        digitlab.preprocess(torch.zeros(3, 14, 14))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        digitlab.preprocess(torch.full((14, 14), 2.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        digitlab.preprocess(np.full((14, 14), np.nan))


# --- export ---------------------------------------------------------------------------------------


@pytest.fixture
def random_model():
    torch.manual_seed(0)
    model = sc.SimpleCNN().eval()
    with torch.no_grad():  # batch-norm statistics unlike the defaults, so that they are tested too
        for bn in (model.features.bn1, model.features.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(-1.5, 1.5)
        model.features.conv2.weight[3] = 0  # a channel of zeros: its scale must not be 0
    return model


def test_encode_decode_round_trip(random_model):
    state = random_model.state_dict()
    layout, data = digitlab.encode(state, "int8")
    decoded = digitlab.decode(layout, data)
    assert set(decoded) == {k for k, v in state.items() if v.is_floating_point()}
    assert all(e["offset"] % 4 == 0 for e in layout)
    int8 = {e["name"] for e in layout if e["dtype"] == "int8"}
    assert int8 == {"features.conv2.weight", "classifier.fc1.weight"}
    for name, t in decoded.items():
        original = state[name]
        assert t.shape == original.shape and t.dtype == torch.float32
        if name in int8:
            rows = original.reshape(len(original), -1)
            step = rows.abs().amax(1, keepdim=True) / 127
            assert ((t.reshape(len(t), -1) - rows).abs() <= step / 2 + 1e-7).all()  # half a step at most
        else:
            assert torch.equal(t, original.half().float())
    assert torch.equal(decoded["features.conv2.weight"][3], torch.zeros(32, 5, 5))
    layout16, data16 = digitlab.encode(state, "float16")
    assert {e["dtype"] for e in layout16} == {"float16"}
    assert len(data) < 0.55 * len(data16)  # int8 for 99 % of the numbers: about half of float16
    assert digitlab.encode(state, "int8") == (layout, data)  # deterministic
    with pytest.raises(ValueError, match="encoding"):
        digitlab.encode(state, "int4")


def test_exported_model_computes_what_the_original_computes(random_model):
    exported = digitlab.model_from(*digitlab.encode(random_model.state_dict(), "int8"))
    assert not exported.training
    x = torch.randn(8, 1, 28, 28)
    assert torch.allclose(sc.predict(exported, x), sc.predict(random_model, x), atol=0.02)


def test_export_writes_files_tied_to_the_checkpoint(random_model, mnist_root, tmp_path, capsys):
    path = checkpoints.save(random_model, tmp_path / "model.pt")
    out = tmp_path / "static"
    manifest = digitlab.export(path, out, data_root=mnist_root, test_images=200)
    assert "exported model.pt" in capsys.readouterr().out
    digest = checkpoints.sha256(path)
    assert manifest["checkpoint_sha256"] == digest and manifest["test"]["images"] == 200
    assert json.loads((out / "digitlab-weights.json").read_text()) == manifest
    read, data = digitlab.read_exported(out, expected_sha256=digest)
    assert read == manifest and hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert len(data) == (out / "digitlab-weights.bin").stat().st_size == manifest["bytes"]
    # weights of another checkpoint than the reference are stale: refused, with the command to run
    with pytest.raises(ValueError, match="stale.*python -m cnnkit export-weights"):
        digitlab.read_exported(out)
    with pytest.raises(ValueError, match="stale"):
        digitlab.payload(torch.zeros(1, 28, 28), [0], directory=out)
    # a damaged file is refused too
    (out / "digitlab-weights.bin").write_bytes(data[:-4] + b"\0\0\0\1")
    with pytest.raises(ValueError, match="does not match its manifest"):
        digitlab.read_exported(out, expected_sha256=digest)
    with pytest.raises(FileNotFoundError, match="export-weights"):
        digitlab.read_exported(tmp_path / "nowhere")


def test_export_weights_command(random_model, mnist_root, tmp_path, capsys):
    path = checkpoints.save(random_model, tmp_path / "model.pt")
    argv = ["export-weights", "--checkpoint", str(path), "--out-dir", str(tmp_path / "out")]
    argv += ["--encoding", "float16", "--test-images", "100", "--data-root", str(mnist_root)]
    assert cli.main(argv) == 0
    assert "as float16" in capsys.readouterr().out
    manifest, _ = digitlab.read_exported(tmp_path / "out", expected_sha256=checkpoints.sha256(path))
    assert manifest["encoding"] == "float16" and manifest["test"]["images"] == 100


# --- the committed weights ----------------------------------------------------------------------


def test_the_committed_weights_come_from_the_reference_checkpoint():
    """Fails when checkpoints/simplecnn.pt (REFERENCE_SHA256) changes without a new export:
    run `python -m cnnkit export-weights` and commit the two files."""
    manifest, data = digitlab.read_exported()
    assert manifest["checkpoint_sha256"] == checkpoints.REFERENCE_SHA256
    assert manifest["checkpoint_sha256"] == checkpoints.sha256(checkpoints.reference_path())
    model, _ = checkpoints.load_reference()
    reference = model.state_dict()
    decoded = digitlab.decode(manifest["tensors"], data)
    exported = digitlab.exported_model().state_dict()
    assert all(torch.equal(exported[name], t) for name, t in decoded.items())
    for name, t in decoded.items():  # the bytes hold this checkpoint's tensors, not only its hash
        r = reference[name]
        tolerance = (
            r.abs().max() / 254 + 1e-7 if t.numel() >= digitlab.INT8_MIN_SIZE else r.abs().max() / 1024
        )
        assert (t - r).abs().max() <= tolerance, name
    n_params = sum(p.numel() for p in model.parameters())
    assert len(data) <= 2 * n_params * 1.01  # float16 or smaller
    test = manifest["test"]
    assert test["images"] == 10_000
    assert test["same_prediction"] >= 0.999 * test["images"]
    assert test["exported_accuracy"] >= test["float32_accuracy"] - 0.001
    assert math.isclose(
        test["float32_accuracy"],
        json.loads(checkpoints.reference_path().with_suffix(".json").read_text())["test_acc"],
        abs_tol=0.001,
    )


def test_payload_holds_what_the_page_needs():
    images = torch.stack(
        [torch.full((1, 28, 28), (0 - MEAN) / STD), torch.full((1, 28, 28), (1 - MEAN) / STD)]
    )
    data = digitlab.payload(images, [3, 8])
    manifest, weights = digitlab.read_exported()
    import base64

    assert base64.b64decode(data["weights"]) == weights
    assert (
        data["tensors"] == manifest["tensors"] and data["checkpoint_sha256"] == checkpoints.REFERENCE_SHA256
    )
    assert [e["label"] for e in data["examples"]] == [3, 8]
    pixels = [np.frombuffer(base64.b64decode(e["pixels"]), np.uint8) for e in data["examples"]]
    assert pixels[0].shape == (784,) and pixels[0].max() == 0 and pixels[1].min() == 255
    k = data["constants"]
    assert (k["box"], k["frame"], k["grid"], k["mean"], k["std"]) == (20, 28, digitlab.GRID, MEAN, STD)
