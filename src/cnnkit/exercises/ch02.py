"""Exercises of chapter 2, pooling (notebook 02-pooling)."""

import numpy as np
import torch
import torch.nn.functional as F

from cnnkit import scratch
from cnnkit.exercises import Wrong, exercise, function, number_array, reader_call, whole_number, whole_numbers

NOTEBOOK = "02-pooling"

#: The map of exercises 2.1 and 2.3.
EXERCISE_MAP = np.array([[2, 0, 1, 4], [5, 3, 8, 1], [0, 1, 2, 2], [9, 4, 3, 6]], dtype=float)
#: The worked example of the chapter (exercise 2.4).
WORKED_MAP = scratch.WORKED_POOLING_MAP  # the chapter's worked 4x4 map


def _first_wrong_window(answer: np.ndarray, expected: np.ndarray, k: int, stride: int) -> str:
    i, j = (int(v) for v in np.argwhere(~np.isclose(answer, expected))[0])
    return (
        f"output ({i}, {j}) is off; its window covers rows {i * stride}–{i * stride + k - 1} and "
        f"columns {j * stride}–{j * stride + k - 1} of the map."
    )


@exercise(
    "2.1",
    NOTEBOOK,
    "pooling by hand",
    hint="the four 2×2 windows are the four quadrants of the map; max pooling keeps the largest "
    "value of each, average pooling adds the four values and divides by 4.",
    solution="""
        max_answer = [[5, 8], [9, 6]]
        avg_answer = [[2.5, 3.5], [3.5, 3.25]]
    """,
    mistakes={
        "sums": ("[[2.5, 3.5], [3.5, 3.25]]", "[[10, 14], [14, 13]]", "holds the sums of the windows"),
        "means": ("[[5, 8], [9, 6]]", "[[2.5, 3.5], [3.5, 3.25]]", "max-pooled map holds the averages"),
        "transposed": ("[[5, 8], [9, 6]]", "[[5, 9], [8, 6]]", "rows and columns swapped"),
        "one window off": ("3.25]]", "3.5]]", "output (1, 1) is off"),
        "windows that overlap": ("[[5, 8], [9, 6]]", "[[5, 8, 8], [5, 8, 8], [9, 4, 6]]", "has shape (3, 3)"),
        "the minima": ("[[5, 8], [9, 6]]", "[[0, 1], [0, 2]]", "the smallest value of each window"),
    },
)
def _(max_answer, avg_answer):
    t = torch.tensor(EXERCISE_MAP)[None, None]
    expected_max = F.max_pool2d(t, 2)[0, 0].numpy()
    expected_avg = F.avg_pool2d(t, 2)[0, 0].numpy()
    for answer, expected, name in ((max_answer, expected_max, "max"), (avg_answer, expected_avg, "average")):
        answer = number_array(answer, f"the {name}-pooled map")
        if answer.shape != (2, 2):
            raise Wrong(
                f"your {name}-pooled map has shape {answer.shape}; 2×2 windows with stride 2 turn a "
                "4×4 map into 2×2 (one number per window, the windows do not overlap)."
            )
        if np.allclose(answer, expected):
            continue
        if np.allclose(answer, expected.T):
            raise Wrong(f"your {name}-pooled map has rows and columns swapped: write it row by row.")
        if name == "max" and np.allclose(answer, expected_avg):
            raise Wrong("your max-pooled map holds the averages: max pooling keeps the largest value.")
        if name == "max" and np.allclose(answer, -F.max_pool2d(-t, 2)[0, 0].numpy()):
            raise Wrong("your max-pooled map holds the smallest value of each window, not the largest.")
        if name == "average" and np.allclose(answer, 4 * expected):
            raise Wrong("your average-pooled map holds the sums of the windows: divide each by 4.")
        if name == "average" and np.allclose(answer, expected_max):
            raise Wrong("your average-pooled map holds the maxima: average pooling takes the mean.")
        raise Wrong(f"in your {name}-pooled map, " + _first_wrong_window(answer, expected, 2, 2))


@exercise(
    "2.2",
    NOTEBOOK,
    "overlapping windows",
    hint="the size is ⌊(24 − 3) / 2⌋ + 1; then find the row where the last window ends.",
    solution="""
        pooled_size = 11
        never_used = 24 * 24 - 23 * 23
    """,
    wrong=[
        ("pooled_size = 12\nnever_used = 47", "you rounded up"),
        ("pooled_size = 10\nnever_used = 47", "you left out the + 1"),
        ("pooled_size = 22\nnever_used = 47", "that is the size for stride 1"),
        ("pooled_size = 8\nnever_used = 47", "that is the size for stride 3"),
        ("pooled_size = 11\nnever_used = 48", "counts the pixel at (23, 23) twice"),
        ("pooled_size = 11\nnever_used = 24", "is one row (or one column)"),
        ("pooled_size = 11\nnever_used = 0", "some inputs are never used"),
    ],
)
def _(pooled_size, never_used):
    size, k, stride = 24, 3, 2
    expected_size = scratch.pool_output_size(size, k, stride)
    pooled_size = whole_number(pooled_size, "the pooled size")
    if pooled_size != expected_size:
        if pooled_size == (size - k) // stride:
            why = "you left out the + 1, which counts the window at the start."
        elif pooled_size == scratch.pool_output_size(size, k, 1):
            why = "that is the size for stride 1; with stride 2 the window moves 2 pixels at a time."
        elif pooled_size == scratch.pool_output_size(size, k):
            why = "that is the size for stride 3 (windows that do not overlap); here the stride is 2."
        elif pooled_size == -(-(size - k) // stride) + 1:
            why = "you rounded up; the floor drops a last window that would hang over the border."
        else:
            why = "put size 24, window 3 and stride 2 into ⌊(size − window) / stride⌋ + 1."
        raise Wrong(f"{pooled_size} windows along each side: {why}")
    covered = np.zeros((size, size), dtype=bool)
    for i in range(expected_size):
        for j in range(expected_size):
            covered[i * stride : i * stride + k, j * stride : j * stride + k] = True
    expected_unused = int((~covered).sum())
    never_used = whole_number(never_used, "the number of inputs never used")
    if never_used == expected_unused:
        return None
    if never_used == 0:
        raise Wrong("some inputs are never used: where does the last window start, and where does it end?")
    if never_used == 2 * size:
        raise Wrong(
            f"{never_used} counts the pixel at (23, 23) twice: it is in the last row and in the last column."
        )
    if never_used == size:
        raise Wrong(
            f"{never_used} is one row (or one column); both the last row and the last column are left out."
        )
    raise Wrong(
        f"{never_used} inputs: the last window starts at row {stride * (expected_size - 1)}; which "
        "rows and columns does no window reach?"
    )


@exercise(
    "2.3",
    NOTEBOOK,
    "follow the gradient",
    hint="each 2×2 window sends its upstream gradient to the input that was its maximum; every "
    "other input gets 0.",
    solution="""
        grad_input = [[0, 0, 0, 0],
                      [1, 0, 2, 0],
                      [0, 0, 0, 0],
                      [3, 0, 0, 4]]
    """,
    wrong=[
        ("grad_input = np.kron([[1, 2], [3, 4]], np.ones((2, 2)))", "every input of a window its gradient"),
        ("grad_input = np.kron([[1, 2], [3, 4]], np.ones((2, 2))) / 4", "the gradient of average pooling"),
        ("grad_input = [[1, 2], [3, 4]]", "the gradient has shape (2, 2)"),
    ],
    mistakes={
        "all 1": (("[1, 0, 2, 0]", "[3, 0, 0, 4]"), ("[1, 0, 1, 0]", "[1, 0, 0, 1]"), "positions are right"),
        "a maximum misplaced": ("[3, 0, 0, 4]", "[0, 3, 0, 4]", "the value at row 3, column 0 is off"),
    },
)
def _(grad_input):
    upstream = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    x = torch.tensor(EXERCISE_MAP)[None, None].requires_grad_()
    F.max_pool2d(x, 2).backward(upstream[None, None])
    expected = x.grad[0, 0].numpy()
    grad_input = number_array(grad_input, "the gradient")
    if grad_input.shape != (4, 4):
        raise Wrong(
            f"the gradient has shape {grad_input.shape}; it has one value per input of the pooling, 4×4."
        )
    if np.allclose(grad_input, expected):
        return None
    spread = np.kron(upstream.numpy(), np.ones((2, 2)))
    if np.allclose(grad_input, spread):
        raise Wrong(
            "you gave every input of a window its gradient; max pooling sends it to the maximum only."
        )
    if np.allclose(grad_input, spread / 4):
        raise Wrong("that is the gradient of average pooling; max pooling sends it to the maximum only.")
    if np.array_equal(grad_input != 0, expected != 0):
        raise Wrong(
            "the positions are right; each maximum gets its own window's upstream gradient (1, 2, 3 or 4)."
        )
    r, c = (int(v) for v in np.argwhere(~np.isclose(grad_input, expected))[0])
    raise Wrong(
        f"the value at row {r}, column {c} is off; find the maximum of the 2×2 window that contains "
        "it: only that input gets the window's gradient."
    )


@exercise(
    "2.4",
    NOTEBOOK,
    "where gradients pile up",
    hint="3×3 windows with stride 1 on a 4×4 map start at rows 0 and 1 and at columns 0 and 1; "
    "an input collects one gradient from each window whose maximum it is.",
    solution="""
        overlap_pooled = [[6, 6], [6, 7]]
        busiest_position = (1, 1)
        busiest_gradient = 3
    """,
    mistakes={
        "2×2 windows, stride 2": ("[[6, 6], [6, 7]]", "[[6, 5], [3, 7]]", "output (0, 1) is off"),
        "one window wrong": ("[6, 7]]", "[6, 6]]", "output (1, 1) is off"),
        "counted from 1": ("(1, 1)", "(2, 2)", "count rows and columns from 0"),
        "the largest value": (("(1, 1)", "= 3"), ("(3, 3)", "= 1"), "is the maximum of 1 window"),
        "all four windows": ("= 3", "= 4", "4: count the windows whose maximum is the value at (1, 1)"),
        "one window": ("= 3", "= 1", "1: count the windows whose maximum is the value at (1, 1)"),
        "a flat index": ("(1, 1)", "5", "give the position as a tuple, (row, column)"),
    },
)
def _(overlap_pooled, busiest_position, busiest_gradient):
    x = torch.tensor(WORKED_MAP)[None, None].requires_grad_()
    out = F.max_pool2d(x, 3, stride=1)
    out.sum().backward()
    expected_out, grad = out[0, 0].detach().numpy(), x.grad[0, 0].numpy()
    pooled = number_array(overlap_pooled, "the pooled map")
    if pooled.shape != expected_out.shape:
        raise Wrong(
            f"the pooled map has shape {pooled.shape}; with 3×3 windows and stride 1 a 4×4 map "
            "gives ⌊(4 − 3) / 1⌋ + 1 = 2 windows along each side."
        )
    if not np.allclose(pooled, expected_out):
        raise Wrong("in the pooled map, " + _first_wrong_window(pooled, expected_out, 3, 1))
    position = whole_numbers(busiest_position, "the position", "(row, column)")
    top = tuple(int(v) for v in np.unravel_index(grad.argmax(), grad.shape))
    if len(position) != 2:
        raise Wrong(f"give the position as (row, column); you gave {len(position)} numbers.")
    if position != top:
        if position == (top[0] + 1, top[1] + 1):
            raise Wrong(f"{position}: count rows and columns from 0, as NumPy and PyTorch do.")
        if all(0 <= p < 4 for p in position):
            n = int(grad[position])
            raise Wrong(
                f"the input at {position} is the maximum of {n} window{'s' if n != 1 else ''}; "
                "another input is the maximum of more."
            )
        raise Wrong(f"{position} is outside the 4×4 map.")
    gradient = whole_number(busiest_gradient, "the gradient")
    if gradient != grad.max():
        raise Wrong(
            f"{gradient}: count the windows whose maximum is the value at {position}; each sends it "
            "its upstream gradient of 1."
        )


@exercise(
    "2.5",
    NOTEBOOK,
    "the receptive field of a third block",
    hint="after block 2 a unit sees r = 16 pixels and neighbouring units are j = 4 pixels apart; "
    "a layer with kernel k and stride s gives r + (k − 1)·j and j·s.",
    solution="""
        field_conv3 = 16 + (3 - 1) * 4
        field_pool3 = field_conv3 + (2 - 1) * 4
    """,
    wrong=[
        ("field_conv3 = 18\nfield_pool3 = 19", "you added k − 1 = 2 pixels"),
        ("field_conv3 = 20\nfield_pool3 = 22", "the jump after pool2 is 4, not 2"),
        ("field_conv3 = 24\nfield_pool3 = 32", "you used the jump after pool3"),
        ("field_conv3 = 24\nfield_pool3 = 48", "pooling does not multiply the field by its stride"),
        ("field_conv3 = 19\nfield_pool3 = 28", "19 pixels after conv3: use r_out"),
    ],
)
def _(field_conv3, field_pool3):
    # the Simple CNN's layers as (kernel, stride), then the new block: conv3 3×3, pool3 2×2
    field, jump, fields = 1, 1, []
    for k, s in ((5, 1), (2, 2), (5, 1), (2, 2), (3, 1), (2, 2)):
        field, jump = field + (k - 1) * jump, jump * s
        fields.append(field)
    fields = dict(zip(("conv1", "pool1", "conv2", "pool2", "conv3", "pool3"), fields))
    conv3 = whole_number(field_conv3, "the receptive field after conv3")
    if conv3 != fields["conv3"]:
        if conv3 == fields["pool2"] + 2:
            why = (
                "you added k − 1 = 2 pixels, but neighbouring units after two poolings are 4 pixels "
                "apart in the image: each extra step of the kernel adds 4 pixels."
            )
        elif conv3 == fields["pool2"] + 2 * 2:
            why = "the jump after pool2 is 4, not 2: each 2×2 pooling with stride 2 doubles it."
        else:
            why = "use r_out = r_in + (k − 1)·j_in with r_in = 16, k = 3 and j_in = 4."
        raise Wrong(f"{conv3} pixels after conv3: {why}")
    pool3 = whole_number(field_pool3, "the receptive field after pool3")
    if pool3 != fields["pool3"]:
        if pool3 == conv3 * 2:
            why = "pooling does not multiply the field by its stride; it adds (k − 1)·j_in pixels."
        elif pool3 == conv3 + (2 - 1) * 8:
            why = (
                "you used the jump after pool3 (8); the pooling's window steps over units of the "
                "layer below it, which are j_in = 4 pixels apart."
            )
        elif pool3 == conv3 + 1:
            why = "the two units in a 2×2 window are 4 pixels apart in the image, not 1."
        else:
            why = f"use r_out = r_in + (k − 1)·j_in with r_in = {fields['conv3']}, k = 2 and j_in = 4."
        raise Wrong(f"{pool3} pixels after pool3: {why}")
    return "A unit after pool3 would see the whole 28×28 digit."


@exercise(
    "2.6",
    NOTEBOOK,
    "the gradient of average pooling",
    kind="code",
    hint="every input of a k×k window receives 1/k² of that window's upstream gradient; "
    "np.repeat (or np.kron with np.ones((k, k))) copies each value into a k×k block.",
    solution="""
        def avg_pool_backward(grad_out, k):
            grad_out = np.asarray(grad_out, dtype=float)
            block = np.repeat(np.repeat(grad_out, k, axis=0), k, axis=1)
            return block / k**2
    """,
    mistakes={
        "not divided": ("return block / k**2", "return block", "with k = 2 the values are 4 times too large"),
        "divided by k": ("block / k**2", "block / k", "with k = 2 the values are 2 times too large"),
        "divided by 4": ("k**2", "4", "divide by k², not by 4"),
        "to one input per window": (
            "return block / k**2",
            "block[:] = 0\n    block[::k, ::k] = grad_out\n    return block",
            "only one input per window gets gradient",
        ),
        "not spread": ("return block / k**2", "return grad_out / k**2", "it returns shape (3, 4)"),
        "tiled": ("block / k**2", "np.tile(grad_out, (k, k)) / k**2", "belongs to window (r // k, c // k)"),
        "one number": ("return block / k**2", "return grad_out[0][0] / k**2", "it returns shape ()"),
    },
)
def _(avg_pool_backward):
    function(avg_pool_backward, "avg_pool_backward(grad_out, k)")
    rng = np.random.default_rng(2)
    for k in (2, 3):
        upstream = rng.normal(size=(3, 4)).round(2)
        x = torch.zeros(1, 1, 3 * k, 4 * k, dtype=torch.float64, requires_grad=True)
        F.avg_pool2d(x, k).backward(torch.tensor(upstream)[None, None])
        expected = x.grad[0, 0].numpy()
        what = f"avg_pool_backward(grad_out, {k}) with a 3×4 grad_out"
        result = number_array(
            reader_call(avg_pool_backward, upstream.copy(), k, what=what), "what it returns"
        )
        if result.shape != expected.shape:
            raise Wrong(
                f"with k = {k} and a 3×4 upstream gradient it returns shape {result.shape}; the gradient "
                f"has the input's shape, {expected.shape[0]}×{expected.shape[1]} (k times taller and wider)."
            )
        if np.allclose(result, expected):
            continue
        scale = float((result * expected).sum() / (expected * expected).sum())
        if np.allclose(result, expected * scale):
            if k == 3 and np.isclose(scale, 9 / 4):
                raise Wrong("right for k = 2 but not for k = 3: divide by k², not by 4.")
            raise Wrong(
                f"with k = {k} the values are {scale:.3g} times too large: each input gets 1/k² = "
                f"1/{k * k} of its window's gradient."
            )
        if np.count_nonzero(result) <= upstream.size:
            raise Wrong(
                "only one input per window gets gradient (that is how max pooling routes it); average "
                "pooling spreads each window's gradient over all k×k inputs."
            )
        raise Wrong(
            f"with k = {k} the gradient is wrong: input (r, c) belongs to window (r // k, c // k) "
            "and receives that window's upstream gradient divided by k²."
        )
    return "It matches PyTorch's autograd for k = 2 and k = 3."
