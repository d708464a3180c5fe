"""The plugin layer: the hooks a plugin implements and the registry that finds plugins.

It knows nothing of reward nets: it holds named objects by kind, found through the
``rewardnets`` entry-point group. Imports only :mod:`rewardnets.errors`.
"""
