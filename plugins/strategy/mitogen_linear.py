"""Mitogen's linear strategy, under the name ansible.cfg chooses.

ansible.cfg can name a directory of strategy plugins but not an installed package, and Mitogen ships its
plugins inside the package (the venv's site-packages, whose path depends on the Python version). This
module makes the installed strategy loadable from plugins/strategy; Mitogen adds its own connection and
action plugins when the strategy starts.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
