// Placeholder: the sidecar gateway sample is being written (issue 5).
return 0;
