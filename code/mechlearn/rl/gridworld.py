"""(being written) mechlearn.rl.gridworld."""

__all__: list[str] = []
