"""Crystal-structure search: a genetic algorithm driven by an actively learned neural-network potential.

The whole public API of a search::

    from gapkit.search import Target, run_search, search_config
    state = run_search(search_config("quick", formula="TiO2", n_atoms=6, target=Target(energy_per_atom=-8.9)))

Modules, in the order a search uses them: ``config`` (what defines a search), ``profiles`` (the recommended
search per profile), ``population`` and ``ga`` (structures and the genetic algorithm), ``potential`` and
``descriptors`` (the learned potential), ``oracle`` (any ASE calculator), ``training_set`` (which labels the
potential learns), ``loop`` (the search itself), ``state`` (what is saved); to evaluate: ``references``,
``outcomes``, ``statistics``, ``tables``, ``figures``, ``records``; the baselines ``random_search`` and
``ase_ga_search``, and ``comparison`` running all three over seeds.
"""

from gapkit.search.config import FinalStage, LearningLoop, SearchConfig, Target
from gapkit.search.loop import run_search
from gapkit.search.profiles import search_config

__all__ = ["FinalStage", "LearningLoop", "SearchConfig", "Target", "run_search", "search_config"]
