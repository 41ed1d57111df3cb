package master

// Version is set by main: g6_build_info and the fleet's registry say it.
var Version = "dev"
