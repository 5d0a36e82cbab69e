"""The kernel and pooling explorers as ipywidgets, for JupyterLab, Colab and VS Code.

:class:`KernelExplorer` and :class:`PoolingExplorer` use core widgets only, so they work with
ipywidgets 7 (as in Colab) and 8 (as in JupyterLab); the Python kernel computes. The same
explorers in plain HTML and JavaScript, which the static book shows, are in
:mod:`cnnkit.webdemos`.

A kernel typed by the reader is read by :func:`cnnkit.kernels.parse_kernel` as numbers (``2``,
``-0.5``, ``1/9``), never evaluated as code; anything else is refused with a message.
"""

from __future__ import annotations

import html
import itertools

import numpy as np

from cnnkit.kernels import KERNEL_PRESETS, parse_kernel
from cnnkit.plots import HIGHLIGHT, POSITIVE, show_map
from cnnkit.scratch import (
    POOL_MODES,
    WORKED_POOLING_MAP,
    conv2d,
    conv_size_formula,
    conv_window,
    pool2d,
    pool_size_formula,
    pool_window,
)

# ---------------------------------------------------------------------------------------------
# The ipywidgets explorers (JupyterLab, Colab, VS Code: anywhere a kernel runs)
# ---------------------------------------------------------------------------------------------

TYPED = "typed below"
#: The explorers' setting sliders: name -> (lowest, highest, first value). The ipywidgets
#: explorers here and the JavaScript ones (:mod:`cnnkit.webdemos`) both use these.
KERNEL_SLIDERS = {"stride": (1, 3, 1), "padding": (0, 3, 0)}
POOLING_SLIDERS = {"window": (1, 4, 2), "stride": (1, 4, 2)}
OTHER = "#56B4E9"  # sky blue: the other windows and the image's edge, quieter than the highlight


def _error_html(message: str) -> str:
    return f'<div style="color:{POSITIVE};font-weight:bold" role="alert">⚠ {html.escape(message)}</div>'


def _grid_html(values, fmt="{:.2f}", title="") -> str:
    rows = "".join(
        "<tr>"
        + "".join(f'<td style="padding:1px 5px;text-align:right">{fmt.format(v)}</td>' for v in row)
        + "</tr>"
        for row in np.asarray(values)
    )
    return (
        f'<table style="display:inline-table;border-collapse:collapse;font-family:monospace;'
        f'font-size:11px;margin:0 6px;vertical-align:middle"><caption style="font-size:11px">{title}'
        f"</caption>{rows}</table>"
    )


def _show_in(out, fig) -> None:
    """Replace what the Output widget ``out`` shows by ``fig``, rendered to PNG here, so it
    looks the same whatever matplotlib backend the notebook uses."""
    import io

    from IPython.display import Image, clear_output, display

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    with out:
        clear_output(wait=True)
        display(Image(data=buffer.getvalue(), format="png"))


def _outline(ax, col, row, width, height, color=HIGHLIGHT, **style) -> None:
    """Outline the ``width`` x ``height`` cells of an image shown by ``show_map`` from ``(row, col)``."""
    from matplotlib.patches import Rectangle

    style = {"linewidth": 2.5, **style}
    ax.add_patch(Rectangle((col - 0.5, row - 0.5), width, height, fill=False, edgecolor=color, **style))


def _slider(widgets, description: str, low: int, high: int, value: int):
    """An integer slider from ``low`` to ``high`` starting at ``value``, that reports only where it
    is released (each move redraws a figure)."""
    return widgets.IntSlider(
        value=value,
        min=low,
        max=high,
        description=description,
        continuous_update=False,
        style={"description_width": "initial"},
    )


def _import_widgets():
    try:
        import ipywidgets as widgets
    except ImportError as err:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError("the explorers need ipywidgets: pip install ipywidgets") from err
    return widgets


class KernelExplorer:
    """Pick a digit and a kernel (a preset or typed values), a stride and a padding; see the
    input, the kernel, the output feature map, the output-size formula with the numbers filled
    in and the window being computed.

    Display it in a notebook (it is the last expression of a cell, or ``display(explorer)``).
    ``explorer.widget`` is the ipywidgets ``VBox``; the controls are attributes (``digit``,
    ``kernel``, ``text``, ``apply``, ``stride``, ``padding``, ``row``, ``col``) and the current
    results are ``explorer.kernel_values`` and ``explorer.result``.
    """

    def __init__(self, images, labels=None, presets: dict[str, str] | None = None):
        widgets = _import_widgets()
        self.images = np.asarray(images, dtype=float)
        if self.images.ndim != 3:
            raise ValueError(f"images must have shape (N, H, W), got {self.images.shape}")
        self.labels = list(range(len(self.images))) if labels is None else list(labels)
        self.presets = dict(KERNEL_PRESETS if presets is None else presets)
        first = next(iter(self.presets))
        self.kernel_values = parse_kernel(self.presets[first])
        self._busy = False
        style = {"description_width": "initial"}
        self.digit = widgets.Dropdown(
            options=[(f"digit {lab}", i) for i, lab in enumerate(self.labels)],
            value=0,
            description="Digit:",
            style=style,
        )
        self.kernel = widgets.Dropdown(
            options=list(self.presets) + [TYPED], value=first, description="Kernel:", style=style
        )
        self.text = widgets.Textarea(
            value=self.presets[first],
            rows=5,
            description="Values:",
            continuous_update=False,
            style=style,
            layout=widgets.Layout(width="300px"),
        )
        self.apply = widgets.Button(
            description="Use typed kernel",
            button_style="info",
            tooltip="read the numbers in the box as a 3×3 or 5×5 kernel",
        )
        self.stride = _slider(widgets, "Stride:", *KERNEL_SLIDERS["stride"])
        self.padding = _slider(widgets, "Padding:", *KERNEL_SLIDERS["padding"])
        self.row = _slider(widgets, "Window row:", 0, 25, 12)
        self.col = _slider(widgets, "Window column:", 0, 25, 12)
        self.message = widgets.HTML("")
        self.formula = widgets.HTML("")
        self.window = widgets.HTML("")
        self.out = widgets.Output()
        # start with the window on the strongest response of the first digit
        first_map = conv2d(self.images[0], self.kernel_values)
        self.row.max, self.col.max = first_map.shape[0] - 1, first_map.shape[1] - 1
        self.row.value, self.col.value = (
            int(v) for v in np.unravel_index(np.abs(first_map).argmax(), first_map.shape)
        )
        self.widget = widgets.VBox(
            [
                widgets.HBox(
                    [
                        widgets.VBox([self.digit, self.kernel, self.stride, self.padding]),
                        widgets.VBox([self.text, self.apply]),
                    ]
                ),
                self.message,
                widgets.HBox([self.row, self.col]),
                self.out,
                self.formula,
                self.window,
            ]
        )
        self.kernel.observe(self._on_preset, names="value")
        self.text.observe(lambda change: self._on_text(), names="value")
        self.apply.on_click(lambda button: self._on_text())
        for w in (self.digit, self.stride, self.padding, self.row, self.col):
            w.observe(lambda change: self.update(), names="value")
        self.update()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _on_preset(self, change):
        if self._busy or change["new"] == TYPED:
            return
        self.kernel_values = parse_kernel(self.presets[change["new"]])
        self._busy = True
        try:
            self.text.value = self.presets[change["new"]]
        finally:
            self._busy = False
        self.message.value = ""
        self.update()

    def _on_text(self):
        if self._busy:
            return
        try:
            values = parse_kernel(self.text.value)
        except ValueError as err:
            self.message.value = _error_html(
                f"Could not read the kernel: {err}. The explorer keeps the last kernel that worked."
            )
            return
        self.message.value = ""
        self.kernel_values = values
        match = [n for n, t in self.presets.items() if np.array_equal(parse_kernel(t), values)]
        self._busy = True
        try:
            self.kernel.value = match[0] if match else TYPED
        finally:
            self._busy = False
        self.update()

    def update(self):
        """Recompute the feature map and redraw (called by every control)."""
        if self._busy:
            return
        image = self.images[self.digit.value]
        k, s, p = self.kernel_values.shape[0], self.stride.value, self.padding.value
        self.result = conv2d(image, self.kernel_values, stride=s, padding=p)
        n_out = self.result.shape[0]
        self._busy = True
        try:
            for slider in (self.row, self.col):
                slider.max = n_out - 1
                slider.value = min(slider.value, n_out - 1)
        finally:
            self._busy = False
        r, c = self.row.value, self.col.value
        win = conv_window(image, self.kernel_values, s, p, r, c)
        self.window_info = win
        size = image.shape[0]
        self.formula.value = (
            f"<b>Output size</b> H<sub>out</sub> = ⌊(H<sub>in</sub> + 2·padding − dilation·(k − 1) − 1)"
            f" / stride⌋ + 1 = {html.escape(conv_size_formula(size, k, s, p))} "
            f"→ the feature map is {n_out}×{self.result.shape[1]}."
        )
        self.window.value = (
            f"<b>Window ({r}, {c})</b>: rows {win['top']}–{win['top'] + k - 1}, columns "
            f"{win['left']}–{win['left'] + k - 1} of the padded input.<br>"
            + _grid_html(win["patch"], title="input patch")
            + " ⊙ "
            + _grid_html(self.kernel_values, "{:.3g}", "kernel")
            + " = "
            + _grid_html(win["products"], title="products")
            + f" → sum = <b>{win['value']:.3f}</b> = output[{r}, {c}]"
        )
        self._draw(image, win)

    def _draw(self, image, win):
        from matplotlib.figure import Figure

        k, p = self.kernel_values.shape[0], self.padding.value
        padded = np.pad(image, p)
        fig = Figure(figsize=(10, 3.4))
        axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1, 0.55, 1]))
        show_map(axes[0], padded, f"input {image.shape[0]}×{image.shape[1]}, padding {p}")
        _outline(axes[0], win["left"], win["top"], k, k)
        if p:  # where the image lies inside its padding
            _outline(axes[0], p, p, image.shape[1], image.shape[0], OTHER, linestyle="--", linewidth=1)
        show_map(axes[1], self.kernel_values, f"kernel {k}×{k}", numbers=k <= 5)
        show_map(
            axes[2],
            self.result,
            f"output {self.result.shape[0]}×{self.result.shape[1]}, stride {self.stride.value}",
        )
        _outline(axes[2], self.col.value, self.row.value, 1, 1)
        fig.suptitle(f"Kernel explorer: {self.kernel.value}", fontsize=11)
        _show_in(self.out, fig)


class PoolingExplorer:
    """Pick a map (the worked 4×4 example or a digit), the window size, the stride and max or
    average pooling; see the windows on the map, the pooled result, the output-size formula and
    the values of one window.

    ``explorer.widget`` is the ipywidgets ``VBox``; the controls are attributes (``source``,
    ``size``, ``stride``, ``mode``, ``row``, ``col``) and the pooled map is ``explorer.result``.
    """

    def __init__(self, images=None, labels=None):
        widgets = _import_widgets()
        self.maps = {"worked example 4×4": WORKED_POOLING_MAP}
        if images is not None:
            images = np.asarray(images, dtype=float)
            labels = list(range(len(images))) if labels is None else list(labels)
            self.maps.update({f"digit {lab}": img for lab, img in zip(labels, images)})
        style = {"description_width": "initial"}
        self.source = widgets.Dropdown(options=list(self.maps), description="Map:", style=style)
        self.size = _slider(widgets, "Window:", *POOLING_SLIDERS["window"])
        self.stride = _slider(widgets, "Stride:", *POOLING_SLIDERS["stride"])
        self.mode = widgets.Dropdown(
            options=list(POOL_MODES), value="max", description="Pooling:", style=style
        )
        self.row = _slider(widgets, "Window row:", 0, 1, 0)
        self.col = _slider(widgets, "Window column:", 0, 1, 0)
        self.formula = widgets.HTML("")
        self.window = widgets.HTML("")
        self.out = widgets.Output()
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.source, self.mode]),
                widgets.HBox([self.size, self.stride]),
                widgets.HBox([self.row, self.col]),
                self.out,
                self.formula,
                self.window,
            ]
        )
        self._busy = False
        for w in (self.source, self.size, self.stride, self.mode, self.row, self.col):
            w.observe(lambda change: self.update(), names="value")
        self.update()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def update(self):
        """Recompute the pooled map and redraw (called by every control)."""
        if self._busy:
            return
        fmap = self.maps[self.source.value]
        k, s, mode = self.size.value, self.stride.value, self.mode.value
        self.result = pool2d(fmap, k, s, mode)
        h_out, w_out = self.result.shape
        self._busy = True
        try:
            for slider, n in ((self.row, h_out), (self.col, w_out)):
                slider.max = n - 1
                slider.value = min(slider.value, n - 1)
        finally:
            self._busy = False
        r, c = self.row.value, self.col.value
        win = pool_window(fmap, k, s, mode, r, c)
        self.window_info = win
        self.formula.value = (
            f"<b>Output size</b> H<sub>out</sub> = ⌊(H<sub>in</sub> − window) / stride⌋ + 1 = "
            f"{html.escape(pool_size_formula(fmap.shape[0], k, s))} → the pooled map is "
            f"{h_out}×{w_out}."
        )
        how = "maximum" if mode == "max" else "average"
        self.window.value = (
            f"<b>Window ({r}, {c})</b>: rows {win['top']}–{win['top'] + k - 1}, columns "
            f"{win['left']}–{win['left'] + k - 1}. "
            + _grid_html(win["values"], "{:.3g}", "values")
            + f" → {how} = <b>{win['value']:.3g}</b> = output[{r}, {c}]"
        )
        self._draw(fmap, win)

    def _draw(self, fmap, win):
        from matplotlib.figure import Figure

        k, s = self.size.value, self.stride.value
        small = fmap.shape[0] <= 8
        fig = Figure(figsize=(8, 3.8))
        axes = fig.subplots(1, 2)
        show_map(
            axes[0], fmap, f"map {fmap.shape[0]}×{fmap.shape[1]}: windows {k}×{k}, stride {s}", numbers=small
        )
        h_out, w_out = self.result.shape
        for i, j in itertools.product(range(h_out), range(w_out)):
            _outline(axes[0], j * s, i * s, k, k, OTHER, linewidth=0.8, alpha=0.8)
        _outline(axes[0], win["left"], win["top"], k, k)
        if self.mode.value == "max":
            axes[0].plot(
                win["argmax"][1],
                win["argmax"][0],
                "o",
                mfc="none",
                mec=POSITIVE,
                ms=150 / fmap.shape[0],
                mew=2,
            )
        show_map(axes[1], self.result, f"{self.mode.value} pooled {h_out}×{w_out}", numbers=small)
        _outline(axes[1], self.col.value, self.row.value, 1, 1)
        fig.suptitle("Pooling explorer", fontsize=11)
        _show_in(self.out, fig)
