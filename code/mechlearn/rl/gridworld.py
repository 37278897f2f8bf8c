"""A small deterministic gridworld for reward shaping and specification gaming.

A layout of strings (``S`` start, ``G`` goal, ``#`` wall, ``.`` free) becomes a `TabularMDP`
(`mechlearn.rl.tabular`): four moves (0 up, 1 right, 2 down, 3 left, as in CliffWalking), a move
into a wall or off the grid stays put, entering the goal pays ``goal_reward`` and ends the
episode. Then two ways of adding a "helpful" bonus for getting closer to the goal:

* `progress_bonus` pays ``bonus`` for every step that reduces the distance to the goal and
  charges nothing for stepping away. It is not potential-based: a two-step loop (away, back)
  earns the bonus again and again, so with a long enough horizon the optimal policy shuffles
  forever instead of finishing, the specification gaming of Clark & Amodei (2016)'s boat.
* `potential_shaping` adds ``F(s, a, s') = gamma Phi(s') - Phi(s)`` for a potential ``Phi``
  (Ng, Harada & Russell 1999, "Policy invariance under reward transformations"). Along any
  trajectory the added rewards telescope, ``sum_t gamma^t F_t = gamma^T Phi(s_T) - Phi(s_0)``,
  so every policy's action values shift by ``-Phi(s)``: ``Q'(s, a) = Q(s, a) - Phi(s)``, and the
  optimal policy is unchanged. With ``Phi(terminal) = 0`` the identity is exact for episodes
  that end, which is why the potential of terminal states is set to zero here.

`gridworld_rollout` follows a deterministic policy for a fixed number of steps (loops included),
for drawing the behaviour on the grid.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from jaxtyping import Bool, Float, Int

from mechlearn.rl.common import check_positive, check_unit_interval
from mechlearn.rl.tabular import TabularMDP, check_policy

__all__ = [
    "GRIDWORLD_MOVES",
    "GridWorld",
    "make_gridworld",
    "progress_bonus",
    "potential_shaping",
    "gridworld_rollout",
]

GRIDWORLD_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
"""(row, column) step of actions 0 up, 1 right, 2 down, 3 left."""


@dataclass
class GridWorld:
    """A gridworld: its layout, its MDP, and what drawing and shaping need."""

    layout: tuple[str, ...]
    """The rows of the grid: ``S`` start, ``G`` goal, ``#`` wall, ``.`` free."""
    mdp: TabularMDP
    """The MDP with the designer's reward (goal reward, step reward)."""
    walls: Bool[np.ndarray, " S"]
    """Which states are wall cells (never entered)."""
    distance: Float[np.ndarray, " S"]
    """Shortest number of steps to the goal from each cell (inf for walls and cut-off cells)."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return len(self.layout), len(self.layout[0])


def make_gridworld(
    layout: Sequence[str],
    gamma: float = 0.95,
    goal_reward: float = 1.0,
    step_reward: float = 0.0,
) -> GridWorld:
    """Build the deterministic gridworld of ``layout`` (one ``S``, at least one ``G``).

    Raises:
        ValueError: ragged rows, unknown characters, no single start or no goal.
    """
    gamma = check_unit_interval("gamma", gamma)
    rows = tuple(layout)
    if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
        raise ValueError(
            f"layout must be non-empty rows of equal length, got {list(rows)}"
        )
    text = "".join(rows)
    if set(text) - set("SG#."):
        bad = sorted(set(text) - set("SG#."))
        raise ValueError(f"layout may only use 'S', 'G', '#', '.', got {bad}")
    if text.count("S") != 1 or "G" not in text:
        raise ValueError("layout needs exactly one start 'S' and at least one 'G'")
    H, W = len(rows), len(rows[0])
    S = H * W
    cell = np.array(list(text))
    walls, goal = cell == "#", cell == "G"
    P, R = np.zeros((S, 4, S)), np.full((S, 4), float(step_reward))
    for s in range(S):
        r, c = divmod(s, W)
        for a, (dr, dc) in enumerate(GRIDWORLD_MOVES):
            nr, nc = r + dr, c + dc
            nxt = (
                nr * W + nc
                if 0 <= nr < H and 0 <= nc < W and not walls[nr * W + nc]
                else s
            )
            P[s, a, nxt] = 1.0
            if goal[nxt]:
                R[s, a] += goal_reward
    mdp = TabularMDP(
        P,
        R,
        goal | walls,
        gamma,
        start=int(text.index("S")),
        grid_shape=(H, W),
        name="gridworld",
    )
    # Breadth-first search from the goals, over reversed moves, gives the distance.
    distance = np.full(S, np.inf)
    queue = deque(np.flatnonzero(goal))
    distance[goal] = 0.0
    while queue:
        s = queue.popleft()
        for p in np.flatnonzero(P[:, :, s].any(axis=1) & ~walls & ~goal):
            if distance[p] == np.inf:
                distance[p] = distance[s] + 1
                queue.append(p)
    return GridWorld(rows, mdp, walls, distance)


def progress_bonus(world: GridWorld, bonus: float) -> TabularMDP:
    """The MDP with ``bonus`` added to every move that brings the agent closer to the goal.

    Moving away costs nothing, so this is *not* of the form ``gamma Phi(s') - Phi(s)``: a loop
    that steps away and back collects ``bonus`` every second step, for ever.
    """
    check_positive("bonus", bonus)
    mdp = world.mdp
    nxt = mdp.P.argmax(axis=2)  # deterministic: the one next state of (s, a)
    d = np.where(np.isfinite(world.distance), world.distance, 1e9)
    closer = d[nxt] < d[:, None]
    return replace(
        mdp,
        R=mdp.R + bonus * closer,
        P=mdp.P.copy(),
        terminal=mdp.terminal.copy(),
        name=f"{mdp.name} + progress bonus {bonus:g}",
    )


def potential_shaping(mdp: TabularMDP, phi: Float[np.ndarray, " S"]) -> TabularMDP:
    """The MDP with expected shaping reward ``gamma E[Phi(s')] - Phi(s)`` added (Ng et al. 1999).

    ``Phi`` of terminal states is taken to be 0, so that the shaped action values are exactly
    ``Q(s, a) - Phi(s)`` and every optimal policy is kept.
    """
    phi = np.asarray(phi, dtype=np.float64)
    if phi.shape != (mdp.n_states,) or not np.isfinite(phi).all():
        raise ValueError(
            f"phi must be finite with shape ({mdp.n_states},), got shape {phi.shape}"
        )
    phi = np.where(mdp.terminal, 0.0, phi)
    F = mdp.gamma * mdp.P @ phi - phi[:, None]
    return replace(
        mdp,
        R=mdp.R + F,
        P=mdp.P.copy(),
        terminal=mdp.terminal.copy(),
        name=f"{mdp.name} + potential shaping",
    )


def gridworld_rollout(
    mdp: TabularMDP,
    policy: Float[np.ndarray, "S A"],
    n_steps: int,
    start: int | None = None,
) -> Int[np.ndarray, " T"]:
    """The states visited in ``n_steps`` steps of the policy's most likely action (or until a terminal state).

    Unlike `mechlearn.rl.tabular.greedy_path`, a loop is followed round and round, which is what
    a drawing of gamed behaviour needs.
    """
    pi = check_policy(mdp, policy)
    check_positive("n_steps", n_steps, integer=True)
    s = mdp.start if start is None else int(start)
    path = [s]
    for _ in range(n_steps):
        if mdp.terminal[s]:
            break
        s = int(mdp.P[s, pi[s].argmax()].argmax())
        path.append(s)
    return np.asarray(path)
