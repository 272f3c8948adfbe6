"""Writing a benchmark's Markdown report, with the machine and the command."""

import os
import platform
import sys

import torch


def write_report(lines, out):
    """Append the machine and the command to ``lines``, print and save them."""
    lines = list(lines) + [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}.",
        "",
        "Command: `python " + " ".join(sys.argv) + "`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as fh:
        fh.write(text)
