"""care_plan (豊橋市): predicted 12-month outcomes of care plans from the 74-item survey."""
