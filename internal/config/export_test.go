package config

// LoadDotEnv is Load with the .env file at path instead of the working
// directory's, so that tests need not change directory.
var LoadDotEnv = load
