import pytest
import torch


def cuda_available() -> bool:
    return torch.cuda.is_available()


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def devices() -> list[str]:
    """The devices every op test runs on: cpu, plus cuda when a GPU is present."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
