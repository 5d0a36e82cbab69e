"""Tests of the command line, cnnkit.cli (`python -m cnnkit`, installed as `simplecnn`)."""

import json

import pytest
import torch

from cnnkit import checkpoints, cli


def _train(root, out, flags: str) -> int:
    """``python -m cnnkit train`` with ``flags``, on the MNIST files at ``root``, saving ``out``."""
    return cli.main(["train", *flags.split(), "--no-progress", "--data-root", str(root), "--out", str(out)])


def test_cli_trains_and_writes_checkpoint_and_history(mnist_root, tmp_path, capsys):
    out = tmp_path / "run" / "model.pt"
    code = _train(mnist_root, out, "--recipe guide --epochs 1 --train-subset 2000")
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch  1/1" in printed and "test accuracy" in printed
    info = json.loads(out.with_suffix(".json").read_text())
    assert len(info["history"]) == 1 and 0.5 < info["test_acc"] <= 1  # 8 steps of Adam: well above 10 %
    checkpoints.load(out, expected_sha256=info["sha256"])


def test_cli_precision_option_is_used_and_recorded(mnist_root, tmp_path, capsys):
    out = tmp_path / "model.pt"
    code = _train(mnist_root, out, "--epochs 1 --train-subset 512 --precision float32")
    assert code == 0
    assert "arithmetic: float32" in capsys.readouterr().out
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["precision"] == "float32" and "precision" not in info["recipe"]
    with pytest.raises(SystemExit):
        cli.main(["train", "--precision", "half"])


def test_cli_device_option(mnist_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "model.pt"
    code = _train(mnist_root, out, "--epochs 1 --train-subset 512 --device cpu")
    assert code == 0 and "device: cpu" in capsys.readouterr().out
    assert json.loads(out.with_suffix(".json").read_text())["device"] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["train", "--device", "cuda", "--data-root", str(mnist_root)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert cli.main(["evaluate", str(out), "--data-root", str(mnist_root)]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_python_dash_m_cnnkit_runs_the_command_line():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "cnnkit", "train", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--device" in result.stdout


def test_cli_reports_missing_data_without_a_traceback(tmp_path, capsys, monkeypatch):
    from torchvision import datasets

    monkeypatch.setattr(datasets.MNIST, "download", lambda self: (_ for _ in ()).throw(OSError("offline")))
    code = cli.main(["train", "--epochs", "1", "--data-root", str(tmp_path), "--no-progress"])
    assert code == 2
    assert "MNIST is not available" in capsys.readouterr().err
