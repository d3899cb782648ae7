"""The DAQ waveform designer (Qt): edit, preview and apply a waveform program."""

from mmapp.gui.designer.panel import WaveformDesigner

__all__ = ["WaveformDesigner"]
