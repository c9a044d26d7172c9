"""What a cell ran on and used: the device's name, and the cell's peak memory (resident set
size, and the CUDA peak on a GPU) measured from the cell's start, not the process's."""

from __future__ import annotations

import platform
import resource
from pathlib import Path

import torch


def _on_cuda(device: str) -> bool:
    return device.startswith("cuda") and torch.cuda.is_available()


def device_name(device: str) -> str:
    if _on_cuda(device):
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def reset_peak_memory(device: str) -> None:
    """Start measuring a cell's peak memory: the kernel's resident high-water mark of this
    process (Linux: writing 5 to /proc/self/clear_refs) and torch's CUDA peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux (or not allowed): the peak is the process's since it started
    if _on_cuda(device):
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: str) -> tuple[float, float | None]:
    """(peak resident set size, peak CUDA memory allocated) in MB since ``reset_peak_memory``."""
    try:
        status = Path("/proc/self/status").read_text()
        rss = int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB
    except (OSError, IndexError, ValueError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    gpu = torch.cuda.max_memory_allocated(device) / 2**20 if _on_cuda(device) else None
    return rss, gpu
