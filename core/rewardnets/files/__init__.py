"""Files: the safe file format, the restricted unpickler, imitation's files, ``load_reward``.

Imports the framework and registry layers below it.
"""
