"""`tinykd tune`: a multi-objective search (Optuna) for the best student on a board, with KD.

trial.py trains and measures one student; study.py holds the search's state and its recovery from dead
workers; search.py runs the workers and reports; results.py has the Pareto front, its table and `--pick`.
"""
