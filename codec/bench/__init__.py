"""`ldmz bench`: the plan of rows, what each row does, running them, and the reports."""
