"""The fullcycle autograder (instructor side). Learner code never imports it.

Empty for now: capstone grading arrives with the grader's issue.
"""

__all__: list[str] = []
