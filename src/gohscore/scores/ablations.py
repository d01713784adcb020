"""The three score-network ablations of the paper (Table 2), and which training keys each one reads.

No torch here: the workflow imports this to tell Snakemake which config keys a network depends on.
"""

from __future__ import annotations

ABLATIONS: dict[str, tuple[bool, bool]] = {
    # name -> (balanced sampling, synthesis)
    "none": (False, False),
    "balanced": (True, False),
    "balanced_synthesis": (True, True),
}
# the training keys (gohscore.settings.ScoreParams) that only the ablations with balancing or with
# synthesis read: a network that does not read them neither records them nor retrains when they change
BALANCING_KEYS = ("balance_power", "balance_keeps_healthy_share")
SYNTHESIS_KEYS = ("synthesis_probability", "synthesis_on", "synthesis_extent")


def unread_keys(ablation: str) -> tuple[str, ...]:
    """The training keys that ``ablation``'s networks do not read.

    >>> unread_keys("none") == BALANCING_KEYS + SYNTHESIS_KEYS, unread_keys("balanced") == SYNTHESIS_KEYS
    (True, True)
    >>> unread_keys("balanced_synthesis")
    ()
    """
    balanced, synthesis = ABLATIONS[ablation]
    return (() if balanced else BALANCING_KEYS) + (() if synthesis else SYNTHESIS_KEYS)
