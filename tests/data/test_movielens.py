"""Does the MovieLens loader read the three published layouts into the simulator's frame?

The files are written here, a few lines each (the first lines of the real
MovieLens 100K, latest-small and 1M files, plus a tie and a half star); nothing
is downloaded.
"""

import numpy as np
import pandas as pd
import pytest

from fullcycle.data import (
    INTERACTION_COLUMNS,
    load_movielens,
    make_messy_interactions,
    simulate_interactions,
)
from fullcycle.exceptions import DataError

U_DATA = (
    "196\t242\t3\t881250949\n"
    "186\t302\t3\t891717742\n"
    "22\t377\t1\t878887116\n"
    "244\t51\t2\t880606923\n"
    "166\t346\t1\t886397596\n"
    "298\t474\t4\t878887116\n"  # the same second as line 3
)
RATINGS_CSV = (
    "userId,movieId,rating,timestamp\n"
    "1,1,4.0,964982703\n"
    "1,3,4.0,964981247\n"
    "1,6,4.0,964982224\n"
    "2,318,3.5,1445714835\n"
)
RATINGS_DAT = "1::1193::5::978300760\n1::661::3::978302109\n1::914::3::978301968\n"


def _write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _expected(rows, lines):
    """The events frame for (timestamp, user, item, rating, day) rows given in time order;
    ``lines``: each row's line in the file (0 = the first rating), its EVENT_ID."""
    seconds, users, items, ratings, days = (list(x) for x in zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "EVENT_ID": np.array(lines, dtype=np.int64),
            "EVENT_TIME": pd.to_datetime(np.array(seconds, dtype=np.int64) * 10**9, unit="ns"),
            "EVENT_DAY": np.array(days, dtype=np.int64),
            "USER_ID": np.array(users, dtype=np.int64),
            "ITEM_ID": np.array(items, dtype=np.int64),
            "EVENT_TYPE": pd.array(["rating"] * len(rows), dtype="str"),
            "RATING": np.array(ratings, dtype=float),
            "PRICE": np.full(len(rows), np.nan),
        }
    )


def test_u_data_is_sorted_by_time_with_days_since_the_first_rating(tmp_path):
    """Does u.data load in time order, ties in file order, with the right days?

    Unix day = timestamp // 86,400: 878887116 -> 10172 (1997-11-07 07:18:36),
    880606923 -> 10192, 881250949 -> 10199, 886397596 -> 10259, 891717742 ->
    10320, so EVENT_DAY = 0, 0 (the tie, user 298 after user 22 as in the
    file), 20, 27, 87 and 148.
    """
    events = load_movielens(_write(tmp_path, "u.data", U_DATA))
    expected = _expected(
        [
            (878887116, 22, 377, 1, 0),
            (878887116, 298, 474, 4, 0),
            (880606923, 244, 51, 2, 20),
            (881250949, 196, 242, 3, 27),
            (886397596, 166, 346, 1, 87),
            (891717742, 186, 302, 3, 148),
        ],
        lines=[2, 5, 3, 0, 4, 1],
    )
    pd.testing.assert_frame_equal(events, expected)
    assert events["EVENT_TIME"].iloc[0] == pd.Timestamp("1997-11-07 07:18:36")


def test_ratings_csv_keeps_half_stars(tmp_path):
    """Does ratings.csv (with its header) load, half stars included?

    964981247, 964982224 and 964982703 all fall on Unix day 11168
    (2000-07-30); 1445714835 // 86,400 = 16732, day 16732 - 11168 = 5564.
    """
    events = load_movielens(_write(tmp_path, "ratings.csv", RATINGS_CSV))
    expected = _expected(
        [
            (964981247, 1, 3, 4.0, 0),
            (964982224, 1, 6, 4.0, 0),
            (964982703, 1, 1, 4.0, 0),
            (1445714835, 2, 318, 3.5, 5564),
        ],
        lines=[1, 2, 0, 3],
    )
    pd.testing.assert_frame_equal(events, expected)


def test_ratings_dat_of_movielens_1m(tmp_path):
    """Does the ``::``-separated ratings.dat of MovieLens 1M load too?"""
    events = load_movielens(_write(tmp_path, "ratings.dat", RATINGS_DAT))
    expected = _expected(
        [(978300760, 1, 1193, 5, 0), (978301968, 1, 914, 3, 0), (978302109, 1, 661, 3, 0)],
        lines=[0, 2, 1],
    )
    pd.testing.assert_frame_equal(events, expected)


@pytest.mark.parametrize(
    "name, text, others",
    [
        ("u.data", U_DATA, {"u.item": "1|Toy Story (1995)|01-Jan-1995||http://x|0|0\n"}),
        ("ratings.csv", RATINGS_CSV, {"movies.csv": "movieId,title,genres\n1,Toy Story,Comedy\n"}),
        ("ratings.dat", RATINGS_DAT, {"movies.dat": "1::Toy Story (1995)::Comedy\n"}),
    ],
)
def test_a_folder_loads_its_ratings_file(tmp_path, name, text, others):
    """Does a MovieLens folder load as its ratings file, the other files ignored?"""
    path = _write(tmp_path / "ml", name, text)
    for other, content in others.items():
        _write(tmp_path / "ml", other, content)
    pd.testing.assert_frame_equal(load_movielens(tmp_path / "ml"), load_movielens(path))


def test_a_split_file_of_movielens_100k_is_recognised_by_its_content(tmp_path):
    """Does u1.base (the u.data layout under another name) load?"""
    events = load_movielens(_write(tmp_path, "u1.base", U_DATA))
    assert len(events) == 6 and events["RATING"].sum() == 14


def test_the_frame_has_the_simulators_shape(tmp_path):
    """Are the columns and types those of the simulator's events, so one pipeline runs on both?"""
    events = load_movielens(_write(tmp_path, "u.data", U_DATA))
    simulated = simulate_interactions(n_users=50, n_items=40, n_days=3, seed=0).events
    assert list(events.columns) == INTERACTION_COLUMNS
    assert (events.dtypes == simulated.dtypes).all()
    assert set(events["EVENT_TYPE"]) == {"rating"} and events["PRICE"].isna().all()


def test_the_messiness_layer_runs_on_movielens_events(tmp_path):
    """Can MovieLens events be made messy (bots rate, no prices to blank)?"""
    events = load_movielens(_write(tmp_path, "ratings.csv", RATINGS_CSV))
    messy, report = make_messy_interactions(events, rate=0.2, seed=1)
    assert report.counts["missing_prices"] == 0
    bots = messy[messy["USER_ID"].isin(report.bot_users)]
    assert len(bots) == report.counts["bot_users"] >= 500
    assert set(bots["EVENT_TYPE"]) == {"rating"} and bots["RATING"].isin([3.5, 4.0]).all()


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|0|0\n", "none of the MovieLens"),
        ("movies.csv", "movieId,title,genres\n1,Toy Story,Comedy\n", "header 'movieId"),
        ("ratings.csv", "1,1,4.0,964982703\n", "not a header"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n", "no ratings"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n1,1,,964982703\n", "line 2: RATING"),
        ("u.data", "", "is empty"),
        ("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\t7\n", "Expected 4 fields"),
        ("u.data", "196\t242\t3\t881250949\n186\t302\t3\n", "line 2: TIMESTAMP is missing"),
        ("u.data", "196\t242\tgood\t881250949\n186\t30.5\t3\t1\n", "line 1: RATING is 'good'"),
        ("ratings.dat", "1::1193::5::978300760\n1::661:3::978302109\n", r"line\(s\) \[2\]"),
        ("ratings.dat", "1::1193::5::978300760::9\n", "has 5 fields"),
    ],
)
def test_a_wrong_file_is_refused_with_a_clear_reason(tmp_path, name, text, match):
    """Does a file that is not MovieLens ratings fail with a message naming what is wrong?"""
    path = _write(tmp_path, name, text)
    with pytest.raises(DataError, match=match) as error:
        load_movielens(path)
    assert str(path) in str(error.value)


def test_a_zip_a_missing_path_and_a_folder_without_ratings_are_refused(tmp_path):
    """Do the messages say to unzip, that the path is missing, or what the folder holds?"""
    import zipfile

    with zipfile.ZipFile(tmp_path / "ml-100k.zip", "w") as archive:
        archive.writestr("ml-100k/u.data", U_DATA)
    with pytest.raises(DataError, match="unzip"):
        load_movielens(tmp_path / "ml-100k.zip")
    with pytest.raises(DataError, match="does not exist"):
        load_movielens(tmp_path / "nowhere")
    _write(tmp_path / "other", "README", "MovieLens\n")
    with pytest.raises(DataError, match=r"none of \['u.data'.*it holds: README"):
        load_movielens(tmp_path / "other")
