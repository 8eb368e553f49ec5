exports.inc = (n) => n + 1;
