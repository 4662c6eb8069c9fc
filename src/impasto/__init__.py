"""impasto: paint one picture in the style of another (Gatys et al. neural style transfer)."""

from .config import StyleConfig
from .errors import ImpastoError
from .stylize import Progress, Result, run, stylize
from .video import video

__all__ = ["StyleConfig", "ImpastoError", "Progress", "Result", "run", "stylize", "video"]
__version__ = "0.1.0"
