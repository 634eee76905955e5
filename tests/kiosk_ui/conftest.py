"""Screens and sound without a screen or a sound card.

pygame reads the SDL drivers when a subsystem starts, so they are set here, before any test
in this folder imports pygame: ``dummy`` video draws off screen and ``dummy`` audio plays to
nowhere (a test that captures sound sets ``disk`` for itself). Without them SDL would try
X11 and ALSA (HARDWARE_NOTES, "Screens and sound").
"""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
