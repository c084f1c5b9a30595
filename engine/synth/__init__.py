"""Synthetic labelled data: :func:`fraudrules.synth.generate.generate` and its stages (see that module)."""
