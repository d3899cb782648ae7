"""The simulated NI X-series card (PCIe-6363): the card's state machine by
subsystem (AO, AI, DO/DI, counters, timing and triggers, device), its
attribute tables and DAQmx errors, and the gRPC translation that serves it."""
