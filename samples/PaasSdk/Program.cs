// Placeholder: the PaaS SDK sample is being written (issue 5).
return 0;
