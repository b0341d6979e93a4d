"""The decision policy: which cards the fraud team reviews each day, and which it leaves alone.

The team can review at most ``k`` cards a day, and a review is not free: it
costs analyst time, and a legitimate customer whose card is blocked costs
friction. Reviewing the ``k`` highest scores every day (the handbook's
protocol) spends the whole capacity even on days when the last reviews are
almost surely legitimate cards and lose money. Your policy decides, card by
card, whether a review is worth it and in which order to do them.

The library gives you the candidates and judges the outcome::

    from fullcycle.metrics import FraudInvestigationValue, review_candidates

    value = FraudInvestigationValue(k=100)           # the project's value model
    candidates = review_candidates(frame, scores)    # one row per day and card
    priority = review_priority(candidates, value)    # your policy: one value per row
    report = value.evaluate(frame, scores, priority) # net savings of your reviews

Each day the evaluation skips the cards already caught, then reviews up to
``k`` candidates with a finite priority, highest first; NaN means "do not
review". The grader runs your ``review_priority`` on a hidden window and
compares the net value with reviewing the top ``k`` by score and with the
oracle.
"""

import numpy as np
import pandas as pd

from fullcycle.metrics import FraudInvestigationValue


def review_priority(candidates: pd.DataFrame, value: FraudInvestigationValue) -> np.ndarray:
    """Priority of reviewing each candidate: the expected value of the review, NaN if negative.

    Parameters
    ----------
    candidates : DataFrame
        :func:`fullcycle.metrics.review_candidates`: ``day``, ``card``, ``score``
        (the card's highest score that day, a probability), ``amount``,
        ``top_amount`` (the amount of its highest-scored payment) and ``n_tx``.
    value : FraudInvestigationValue
        The project's value model: ``k``, ``review_cost``, ``recovery_rate``,
        ``friction_cost``, ``block_prevents_future``.

    Returns
    -------
    ndarray
        One float per candidate row, in the same order: higher is reviewed
        first; NaN means the team should not review that card.
    """
    ### BEGIN SOLUTION
    # The score is the model's probability that the transaction is fraud; the card's highest
    # score of the day is a (cautious) probability that the card is compromised.
    p = candidates["score"].to_numpy(dtype=float).clip(0.0, 1.0)
    # What catching the card is worth. The charge-back is on the *fraudulent* payments only:
    # we take the payment that made the score high, not the card's whole day, which would
    # make big spenders look like good catches. A blocked card also stops its later fraud.
    suspicious = candidates["top_amount"].to_numpy(dtype=float)
    # Blocking stops the card's later fraud until the end of the window. On labelled history
    # (a compromised card's fraud in the rest of a 7-day window after the day it was first
    # caught, over its fraud that day) this was 0.5-0.7; we count half. Counting more made the
    # policy review more doubtful cards, and those reviews lost money.
    later_fraud_ratio = 0.5
    later = later_fraud_ratio * suspicious if value.block_prevents_future else 0.0
    gain = value.recovery_rate * suspicious + later
    # Every review costs time; a review of a legitimate card also costs friction.
    expected = p * gain - value.review_cost - (1.0 - p) * value.friction_cost
    # Review only what is expected to pay, the most valuable first: when fewer than k
    # reviews pay, the team stops early; when more do, the capacity goes where it earns most.
    return np.where(expected > 0, expected, np.nan)
    ### END SOLUTION
