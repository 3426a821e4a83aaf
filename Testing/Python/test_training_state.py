"""The paper's best-epoch and stopping policy, on hand-made validation curves."""

import time

from TumorClassifierLib.settings import TrainingConfig
from TumorClassifierLib.training.state import TrainingState


def run(curve, **config):
    state, config = TrainingState(), TrainingConfig(**config)
    improvements = []
    for loss, accuracy in curve:
        improvements.append(state.record_epoch(loss, accuracy, {"val_loss": loss}))
        if state.should_stop_early(config, time.monotonic()):
            break
    return state, improvements


def test_best_epoch_is_the_highest_accuracy_ties_to_the_lower_loss():
    state, improved = run([(1.0, 0.5), (0.9, 0.7), (0.8, 0.7), (0.85, 0.7), (0.7, 0.6)])
    assert improved == [True, True, True, False, False]
    assert (state.best_epoch, state.best_accuracy, state.best_loss) == (3, 0.7, 0.8)
    assert [row["epoch"] for row in state.history] == [1, 2, 3, 4, 5]


def test_early_stopping_counts_epochs_without_a_new_lowest_loss():
    # Accuracy improving does not reset the count: the paper stops on validation loss.
    curve = [(1.0, 0.1), (1.1, 0.2), (1.2, 0.3), (1.3, 0.4), (1.4, 0.5)]
    state, _ = run(curve, early_stopping_patience=3)
    assert state.epoch == 4 and state.epochs_without_improvement == 3
    assert state.best_epoch == 4  # the best accuracy is still kept


def test_the_time_budget_stops_after_the_epoch_that_spends_it():
    state = TrainingState()
    state.record_epoch(1.0, 0.5, {})
    long_ago = time.monotonic() - 3600
    assert state.should_stop_early(TrainingConfig(max_hours=0.5), long_ago)
    assert not state.should_stop_early(TrainingConfig(max_hours=0.0), long_ago)  # 0: no limit
