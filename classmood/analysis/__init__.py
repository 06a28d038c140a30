"""What ``classmood analyze`` writes: faces.csv, class_mood.csv, summary.json and the HTML report."""
