"""Running tasks: the executor (joblib backends), the safe-task wrapper, worker set-up."""
