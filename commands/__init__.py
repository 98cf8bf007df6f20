"""The write side: the `Darkroom` application and its command methods."""

from commands.application import Darkroom

__all__ = ["Darkroom"]
