"""Null-masked columns (Vec), the type vocabularies and phone normalisation: the value model of every stage."""
