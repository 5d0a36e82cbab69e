"""Tests of cnnkit.inspection (looking inside a model). The digit lab's tests are in test_digitlab.py."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import simplecnn as sc  # noqa: E402
from cnnkit import inspection as ins  # noqa: E402
from cnnkit.mnist import BACKGROUND, MEAN, STD  # noqa: E402


def pixels(x):
    """Standardised images back to [0, 1] pixels."""
    return x * STD + MEAN


def blob(row, col, size=3):
    """A black standardised image with a white square whose top-left corner is (row, col)."""
    x = torch.full((1, 1, 28, 28), BACKGROUND)
    x[..., row : row + size, col : col + size] = (1 - MEAN) / STD
    return x


def centre_of_mass(x):
    p = pixels(x)[0, 0]
    idx = torch.arange(28, dtype=torch.float32)
    return ((p.sum(1) @ idx) / p.sum()).item(), ((p.sum(0) @ idx) / p.sum()).item()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- confusion matrix and mistakes ------------------------------------------------------------


def test_confusion_matrix_counts_pairs():
    y_true = torch.tensor([0, 0, 1, 2, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 2, 0, 2])
    cm = ins.confusion_matrix(y_true, y_pred, num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.sum() == 6 and cm.trace() == 4
    assert ins.per_class_accuracy(cm).tolist() == pytest.approx([0.5, 1.0, 2 / 3])


def test_confusion_matrix_matches_a_slow_count():
    g = torch.Generator().manual_seed(0)
    y_true, y_pred = torch.randint(0, 10, (500,), generator=g), torch.randint(0, 10, (500,), generator=g)
    slow = torch.zeros(10, 10, dtype=torch.long)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        slow[t, p] += 1
    assert torch.equal(ins.confusion_matrix(y_true, y_pred), slow)


def test_confusion_matrix_refuses_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        ins.confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="class indices 0..9"):
        ins.confusion_matrix(torch.tensor([0, 10]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="square"):
        ins.per_class_accuracy(torch.zeros(3, 4))


def test_confident_mistakes_are_wrong_and_sorted():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.7, 0.3]])
    y = torch.tensor([0, 0, 1, 1, 1])  # wrong: 1 (0.8), 2 (0.6), 4 (0.7)
    assert ins.confident_mistakes(probs, y, k=5).tolist() == [1, 4, 2]
    assert ins.confident_mistakes(probs, y, k=2).tolist() == [1, 4]


# --- inside the model ---------------------------------------------------------------------------


def test_feature_maps_follow_the_blocks():
    torch.manual_seed(0)
    model = sc.SimpleCNN().train()
    x = torch.randn(1, 1, 28, 28)
    maps = ins.feature_maps(model, x)
    assert [n for n, _ in maps] == [
        "input",
        "conv1",
        "bn1",
        "act1",
        "pool1",
        "drop1",
        "conv2",
        "bn2",
        "act2",
        "pool2",
        "drop2",
    ]
    shapes = {n: tuple(m.shape) for n, m in maps}
    assert shapes["conv1"] == (1, 32, 24, 24) and shapes["pool1"] == (1, 32, 12, 12)
    assert shapes["conv2"] == (1, 64, 8, 8) and shapes["drop2"] == (1, 64, 4, 4)
    assert model.training  # put back the way it was
    with torch.no_grad():
        assert torch.allclose(maps[-1][1], model.eval().features(x))
    assert (dict(maps)["act1"] >= 0).all()


# --- inputs the model never saw ------------------------------------------------------------------


def test_shift_moves_content_and_fills_background():
    x = blob(10, 10)
    moved = ins.shift(x, dx=3, dy=-2)
    assert torch.equal(moved, blob(8, 13))
    assert torch.equal(ins.shift(x), x)
    assert torch.equal(ins.shift(blob(0, 0), dx=-5), torch.full_like(x, BACKGROUND))
    with pytest.raises(ValueError, match="out of the frame"):
        ins.shift(x, dx=28)


def test_rotate_turns_counter_clockwise():
    x = blob(3, 12, size=4)  # near the top, centred left-right
    assert torch.allclose(ins.rotate(x, 0), x, atol=1e-5)
    row, col = centre_of_mass(ins.rotate(x, 90))
    assert row == pytest.approx(13.5, abs=0.6) and col < 8  # top -> left
    row, col = centre_of_mass(ins.rotate(x, -90))
    assert row == pytest.approx(13.5, abs=0.6) and col > 19  # top -> right
    corners = ins.rotate(torch.full((1, 1, 28, 28), BACKGROUND), 45)
    assert torch.allclose(corners, torch.full_like(corners, BACKGROUND))


def test_invert_swaps_ink_and_background():
    x = blob(10, 10)
    inv = ins.invert(x)
    assert pixels(inv)[0, 0, 0, 0].item() == pytest.approx(1.0)
    assert pixels(inv)[0, 0, 11, 11].item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(ins.invert(inv), x, atol=1e-5)


# --- plots ---------------------------------------------------------------------------------------


def test_plots_have_titles():
    cm = ins.confusion_matrix(torch.arange(10).repeat(3), torch.arange(10).repeat(3))
    assert ins.plot_confusion_matrix(cm).get_title() == "Confusion matrix (test set)"
    assert ins.plot_per_class_accuracy(ins.per_class_accuracy(cm)).get_title()
    assert ins.plot_kernels(torch.randn(32, 1, 5, 5))._suptitle.get_text() == "First-layer kernels"
    maps = ins.feature_maps(sc.SimpleCNN(), torch.randn(1, 1, 28, 28))
    fig = ins.plot_feature_maps(maps, names=["conv1", "pool2"], channels=4)
    assert fig._suptitle.get_text() and "(32, 24, 24)" in fig.axes[0].get_ylabel()
    assert ins.plot_probabilities(torch.full((10,), 0.1), label=3).get_title()
    assert ins.plot_robustness([0, 1], [0.99, 0.9], "shift (pixels)").get_title()
    with pytest.raises(ValueError, match="kernels of shape"):
        ins.plot_kernels(torch.randn(64, 32, 5, 5))


def test_shift_works_on_arrays_and_tensors_alike():
    img = np.arange(16.0).reshape(4, 4)
    assert ins.shift(img, dx=1, fill=0)[:, 1:].tolist() == img[:, :-1].tolist()
    assert (ins.shift(img, dx=1, fill=0)[:, 0] == 0).all()
    assert ins.shift(img, dy=-1, fill=0)[:-1].tolist() == img[1:].tolist()
    t = torch.tensor(img)
    assert torch.equal(ins.shift(t, dx=1, dy=-1, fill=0), torch.tensor(ins.shift(img, dx=1, dy=-1, fill=0)))
    with pytest.raises(ValueError, match="out of the frame"):
        ins.shift(img, dx=4)


def test_parameter_count_and_layer_shapes():
    model = sc.SimpleCNN()
    assert ins.count_parameters(model) == 582_218
    shapes = dict(ins.layer_shapes(model))
    assert shapes["features.conv1"] == (1, 32, 24, 24) and shapes["classifier.fc2"] == (1, 10)
    assert model.training  # tracing does not leave the model in evaluation mode


def test_code_lines_finds_lines_by_the_names_of_what_they_show(capsys):
    import inspect

    import simplecnn as sc

    found = ins.code_lines(sc.SimpleCNN, "conv1", "pool1", "pool2")
    assert [t.strip().split("=")[0] for _, t in found] == ["conv1", "pool1", "pool2"]
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and printed[0].startswith("simplecnn.py:")
    lines = inspect.getsource(sc).splitlines()
    assert all(lines[number - 1] == text for number, text in found)  # numbers of the file's lines
    # methods called by name, through a decorator; a statement over two lines is shown whole
    steps = ins.code_lines(sc.train_epoch, "backward", "step", show=False)
    assert [t.strip() for _, t in steps] == ["loss.backward()", "optimizer.step()", "scheduler.step()"]
    assert [t.strip() for _, t in ins.code_lines(sc.evaluate, "eval", show=False)] == ["model.eval()"]
    assert len(ins.code_lines(sc, "FAST", show=False)) == 2
    assert len(ins.code_lines(sc.Batches, show=False)) == len(inspect.getsource(sc.Batches).splitlines())
    with pytest.raises(ValueError, match="SimpleCNN has no conv3"):
        ins.code_lines(sc.SimpleCNN, "conv3")


def test_code_lines_does_not_match_text():
    """A comment or a string that contains a name is not the name."""
    import simplecnn as sc

    found = ins.code_lines(sc.SimpleCNN, "MNIST_SHAPE", show=False)
    assert len(found) == 1 and "check_input" in found[0][1]  # the docstring's table does not count
