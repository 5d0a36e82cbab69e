"""Draw the figures of the theory pages on activations, losses, optimization and regularization.

Run from the repository root: ``python chapters/figures/make_figures.py``. It writes the SVG
files next to this script; the notebooks draw the same curves from their own from-scratch code.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from cnnkit.plots import COLORS

OUT = Path(__file__).resolve().parent
STYLES = ["-", "--", "-.", ":"]
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "simplecnn", "font.size": 10})


def save(fig, name):
    fig.savefig(OUT / name, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)


def activations():
    x = torch.linspace(-5, 5, 401).requires_grad_(True)
    funcs = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "ReLU": F.relu,
        "Leaky ReLU (a = 0.1)": lambda t: F.leaky_relu(t, 0.1),
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (name, f) in enumerate(funcs.items()):
        y = f(x)
        (grad,) = torch.autograd.grad(y.sum(), x)
        style = dict(color=COLORS[i], linestyle=STYLES[i], linewidth=2, label=name)
        ax1.plot(x.detach(), y.detach(), **style)
        ax2.plot(x.detach(), grad, **style)
    ax1.set(title="Activation functions", xlabel="x", ylabel="f(x)", ylim=(-1.6, 3))
    ax2.set(title="Their derivatives", xlabel="x", ylabel="f'(x)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, "activations.svg")


def losses():
    e = torch.linspace(-3, 3, 301)
    m = torch.linspace(-3, 4, 301)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(e, e**2, color=COLORS[0], linewidth=2, label="squared error (MSE)")
    ax1.plot(e, e.abs(), color=COLORS[1], linestyle="--", linewidth=2, label="absolute error (MAE)")
    ax1.set(
        title="Regression: loss of one prediction", xlabel="error  $\\hat y - y$", ylabel="loss", ylim=(0, 4)
    )
    curves = {
        "0-1 loss (is it wrong?)": (m <= 0).float(),
        "hinge  $\\max(0, 1 - m)$": (1 - m).clamp(min=0),
        "cross-entropy  $\\log(1 + e^{-m})$": F.softplus(-m),
        "squared error on softmax": 2 * (1 - torch.sigmoid(m)) ** 2,
    }
    for i, (name, y) in enumerate(curves.items()):
        ax2.plot(m, y, color=COLORS[i + 2 if i else 7], linestyle=STYLES[i], linewidth=2, label=name)
    ax2.set(
        title="Two classes: loss against the margin",
        xlabel="margin  m = $z_y - z_{other}$",
        ylabel="loss",
        ylim=(0, 4),
    )
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, "losses.svg")


def optimization():
    curvature = torch.tensor([1.0, 30.0])

    def f(w):
        return 0.5 * (curvature * w**2).sum(-1)

    def path(make, steps):
        w = torch.tensor([-4.5, 1.5], requires_grad=True)
        opt = make([w])
        pts = [w.detach().clone()]
        for _ in range(steps):
            opt.zero_grad()
            f(w).backward()
            opt.step()
            pts.append(w.detach().clone())
        return torch.stack(pts)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.6, 1]})
    w1, w2 = torch.meshgrid(torch.linspace(-5, 5, 200), torch.linspace(-2, 2, 200), indexing="xy")
    ax1.contour(w1, w2, f(torch.stack([w1, w2], -1)), levels=20, colors="0.75", linewidths=0.7)
    runs = {
        "GD, lr 0.06": lambda p: torch.optim.SGD(p, lr=0.06),
        "momentum 0.9, lr 0.01": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
        "Adam, lr 0.3": lambda p: torch.optim.Adam(p, lr=0.3),
    }
    for i, (name, make) in enumerate(runs.items()):
        pts = path(make, 60)
        ax1.plot(
            pts[:, 0], pts[:, 1], marker=".", markersize=3, color=COLORS[i], linestyle=STYLES[i], label=name
        )
    ax1.plot(0, 0, "k*", markersize=10, label="minimum")
    ax1.set(title="60 steps on $f(w) = (w_1^2 + 30\\,w_2^2)/2$", xlabel="$w_1$", ylabel="$w_2$")
    ax1.legend(fontsize=8, loc="lower right")
    for i, lr in enumerate([0.005, 0.06, 0.07]):
        label = {0.005: "too small", 0.06: "about right", 0.07: "too large"}[lr]
        ax2.semilogy(
            f(path(lambda p, lr=lr: torch.optim.SGD(p, lr=lr), 50)),
            color=COLORS[i],
            linestyle=STYLES[i],
            label=f"{label}, lr {lr}",
        )
    ax2.set(title="Gradient descent: learning rate", xlabel="step", ylabel="f(w)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    save(fig, "optimization.svg")


def regularization():
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 12, dtype=torch.float64)
    y = torch.sin(3 * x) + 0.2 * torch.randn(12, generator=g, dtype=torch.float64)
    xs = torch.linspace(-1, 1, 400, dtype=torch.float64)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharey=True)
    for ax, degree, verdict in zip(axes, (1, 3, 11), ("underfits", "fits", "overfits")):
        powers = lambda t, degree=degree: torch.stack([t**k for k in range(degree + 1)], 1)
        coef = torch.linalg.lstsq(powers(x), y[:, None]).solution
        ax.plot(xs, torch.sin(3 * xs), color="0.6", linestyle=":", label="true curve")
        ax.plot(xs, (powers(xs) @ coef).squeeze(1), color=COLORS[0], label=f"degree {degree}")
        ax.scatter(x, y, color=COLORS[3], s=18, zorder=3, label="training points")
        ax.set(title=f"degree {degree} {verdict}", xlabel="x", ylim=(-2, 2))
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("y")
    save(fig, "overfitting.svg")


if __name__ == "__main__":
    for draw in (activations, losses, optimization, regularization):
        draw()
    print("figures written to", OUT)
