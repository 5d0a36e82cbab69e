"""Draw your own digit and let the Simple CNN read it.

The logic is plain functions, tested like the rest of ``src/``:

* ``grid_to_image`` turns a drawing (a 2-D grid of ink values, for example 14x14 on/off cells)
  into an input the model understands, with the preprocessing MNIST itself used: crop to the
  ink, scale to fit a 20x20 box (keeping the aspect ratio, smoothing the edges), place it in a
  28x28 frame with its centre of mass at the centre, and standardise;
* ``image_to_grid`` goes the other way (to start a drawing from a real digit);
* ``predict_drawing`` returns the class probabilities for a drawing.

``DrawDigit`` wraps them in a widget for JupyterLab and Colab made of core ipywidgets only (a
grid of toggle buttons, two buttons, an image and a text panel), so it runs with ipywidgets 7
and 8 and needs no extension. Display it with ``DrawDigit(model).widget``.
"""

from __future__ import annotations

import io

import torch
import torch.nn.functional as F

from cnnkit.mnist import MEAN, STD
from simplecnn import predict

#: MNIST digits were scaled to fit this box, then centred in a 28x28 frame by centre of mass.
BOX, FRAME = 20, 28


def _as_grid(grid) -> torch.Tensor:
    g = torch.as_tensor(grid, dtype=torch.float32)
    if g.dim() != 2 or min(g.shape) < 2:
        raise ValueError(f"a drawing is a 2-D grid of ink values (at least 2x2), got shape {tuple(g.shape)}")
    if g.min() < 0 or g.max() > 1:
        raise ValueError(
            f"ink values must lie in [0, 1] (0 background, 1 ink), got [{g.min():.2f}, {g.max():.2f}]"
        )
    return g


def grid_to_image(grid) -> torch.Tensor:
    """A drawing ``(H, W)`` with ink in [0, 1] -> a standardised model input ``(1, 1, 28, 28)``.

    Raises ValueError for an empty drawing: there is nothing to read.
    """
    g = _as_grid(grid)
    rows = torch.nonzero(g.sum(1) > 0).flatten()
    cols = torch.nonzero(g.sum(0) > 0).flatten()
    if len(rows) == 0:
        raise ValueError("the drawing is empty: switch on some cells first")
    ink = g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = ink.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    ink = F.interpolate(
        ink[None, None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
    )[0, 0].clamp(0, 1)
    # centre of mass of the ink, placed at the centre of the 28x28 frame
    ys = torch.arange(new_h, dtype=torch.float32)
    xs = torch.arange(new_w, dtype=torch.float32)
    total = ink.sum()
    cy, cx = (ink.sum(1) @ ys) / total, (ink.sum(0) @ xs) / total
    top = int(round((FRAME - 1) / 2 - cy.item()))
    left = int(round((FRAME - 1) / 2 - cx.item()))
    top, left = min(max(top, 0), FRAME - new_h), min(max(left, 0), FRAME - new_w)
    image = torch.zeros(FRAME, FRAME)
    image[top : top + new_h, left : left + new_w] = ink
    return ((image - MEAN) / STD)[None, None]


def image_to_grid(image: torch.Tensor, size: int = 14, threshold: float = 0.35) -> torch.Tensor:
    """A standardised image ``(1, 28, 28)`` or ``(28, 28)`` -> an on/off grid ``(size, size)``
    (average the pixels of each cell, switch it on where the ink is above ``threshold``)."""
    pixels = torch.as_tensor(image).reshape(-1, FRAME, FRAME)[:1] * STD + MEAN
    cells = F.adaptive_avg_pool2d(pixels[None], size)[0, 0]
    return (cells > threshold).float()


def predict_drawing(model, grid) -> torch.Tensor:
    """Class probabilities ``(10,)`` for a drawing (see :func:`grid_to_image`)."""
    return predict(model, grid_to_image(grid))[0]


def _png(image: torch.Tensor, zoom: int = 4) -> bytes:
    """A standardised ``(1, 1, 28, 28)`` image as PNG bytes (white ink on black, enlarged)."""
    from PIL import Image

    pixels = (image[0, 0] * STD + MEAN).clamp(0, 1).mul(255).round().byte().numpy()
    out = io.BytesIO()
    Image.fromarray(pixels).resize((FRAME * zoom, FRAME * zoom), Image.NEAREST).save(out, format="PNG")
    return out.getvalue()


def probabilities_html(probs: torch.Tensor) -> str:
    """The prediction and a bar per class, as HTML (the widget's text panel)."""
    probs = torch.as_tensor(probs).flatten()
    best = int(probs.argmax())
    rows = "".join(
        f"<tr><td style='padding-right:6px'>{'<b>' if i == best else ''}{i}{'</b>' if i == best else ''}</td>"
        f"<td><div style='background:{'#E69F00' if i == best else '#0072B2'};height:10px;"
        f"width:{max(1, round(160 * p))}px'></div></td><td style='padding-left:6px'>{p:.1%}</td></tr>"
        for i, p in enumerate(probs.tolist())
    )
    return (
        f"<div><b>prediction: {best}</b> ({probs[best]:.1%})"
        f"<table style='font-family:monospace;font-size:12px'>{rows}</table></div>"
    )


class DrawDigit:
    """A drawing pad for digits: click cells of a ``size`` x ``size`` grid to draw, and the
    model's prediction and class probabilities update after every click.

    ``DrawDigit(model).widget`` is the widget to display. ``cells`` are the toggle buttons,
    ``grid()``/``set_grid()`` read and write the drawing, ``probs`` holds the latest
    probabilities (None while the drawing is empty).
    """

    def __init__(self, model, size: int = 14, examples: torch.Tensor | None = None, cell_px: int = 22):
        import ipywidgets as w

        if not 7 <= size <= FRAME:
            raise ValueError(f"size must be between 7 and {FRAME} cells, got {size}")
        self.model, self.size, self.examples = model, size, examples
        self.probs: torch.Tensor | None = None
        self._next_example = 0
        self._muted = False
        layout = w.Layout(width=f"{cell_px}px", height=f"{cell_px}px", padding="0", margin="0")
        self.cells = [
            w.ToggleButton(value=False, layout=layout, tooltip=f"row {i // size}, column {i % size}")
            for i in range(size * size)
        ]
        for cell in self.cells:
            cell.observe(self._changed, names="value")
        board = w.GridBox(
            self.cells,
            layout=w.Layout(
                grid_template_columns=f"repeat({size}, {cell_px}px)", grid_gap="1px", width="max-content"
            ),
        )
        clear = w.Button(description="Clear", icon="eraser")
        clear.on_click(lambda _: self.set_grid(torch.zeros(size, size)))
        buttons = [clear]
        if examples is not None:
            example = w.Button(description="Load a test digit")
            example.on_click(lambda _: self.load_example())
            buttons.append(example)
        self.image = w.Image(format="png", layout=w.Layout(width=f"{FRAME * 4}px", height=f"{FRAME * 4}px"))
        self.output = w.HTML()
        side = w.VBox([w.HTML("<b>what the model sees</b> (28x28)"), self.image, self.output])
        self.widget = w.VBox([w.HBox([board, side]), w.HBox(buttons)])
        self.update()

    def grid(self) -> torch.Tensor:
        """The drawing as a ``(size, size)`` tensor of 0 and 1."""
        return torch.tensor([float(c.value) for c in self.cells]).view(self.size, self.size)

    def set_grid(self, grid) -> None:
        """Replace the drawing (a ``(size, size)`` grid of 0/1) and update the prediction once."""
        g = _as_grid(grid)
        if tuple(g.shape) != (self.size, self.size):
            raise ValueError(f"expected a {self.size}x{self.size} grid, got {tuple(g.shape)}")
        self._muted = True
        try:
            for cell, value in zip(self.cells, g.flatten().tolist()):
                cell.value = value > 0.5
        finally:
            self._muted = False
        self.update()

    def load_example(self) -> None:
        """Draw the next image of ``examples`` (standardised test digits) on the grid."""
        if self.examples is None or len(self.examples) == 0:
            raise ValueError("this pad was made without examples")
        image = self.examples[self._next_example % len(self.examples)]
        self._next_example += 1
        self.set_grid(image_to_grid(image, self.size))

    def update(self) -> None:
        """Recompute the model input and prediction from the current drawing."""
        grid = self.grid()
        if grid.sum() == 0:
            self.probs = None
            self.image.value = _png(torch.full((1, 1, FRAME, FRAME), (0 - MEAN) / STD))
            self.output.value = "<i>Click the cells on the left to draw a digit.</i>"
            return
        image = grid_to_image(grid)
        self.probs = predict(self.model, image)[0]
        self.image.value = _png(image)
        self.output.value = probabilities_html(self.probs)

    def _changed(self, change) -> None:
        if not self._muted:
            self.update()
