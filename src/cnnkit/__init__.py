"""Support code for the Simple CNN course; the model itself is ``simplecnn`` (one file).

One job per module, and imports point one way: these modules may use ``simplecnn``, and
``simplecnn`` never uses them. Importing a module changes no global state.

============  =====================================================================
module        its job
============  =====================================================================
mnist         MNIST: download, checksum, standardize, split, hold in memory
augment       rotations, zoom and elastic distortion; the reference model's recipe
plots         the course's colours and style, figure alt text, common plots
checkpoints   save and load weights safely; the reference model; the guide's names
cli           the command line: ``python -m cnnkit train`` (or ``simplecnn train``)
scratch       convolution and pooling written from scratch in NumPy (chapters 1-2)
kernels       classic kernels, and kernels typed by a reader, read as numbers only
explorers     the kernel and pooling explorers as ipywidgets (a Python kernel computes)
webdemos      the demos as HTML and JavaScript that run in the browser (the static book)
experiments   side-by-side training runs for the chapters' comparisons
inspection    layer shapes, mistakes, kernels, feature maps, changed inputs
digitlab      the digit lab of chapter 8: preprocessing and weights for the browser
traininglab   the training lab of chapter 7: its digits and its notebook output
cifar         the appendix's CIFAR-10 network and data
exercises     checked exercises: not answered yet, wrong (and why), or right
============  =====================================================================
"""

__version__ = "0.2.0"
