"""The record a host builder is given: :class:`~mrae.modeling.host_settings.HostSettings`, kept
out of this package (whose import loads torch) so that the config's schema can read its defaults."""

from mrae.modeling.host_settings import HostSettings

__all__ = ["HostSettings"]
