/* capsula login and capsula cache: the small commands around pull. */
#ifndef CAPSULA_LOGIN_H
#define CAPSULA_LOGIN_H

int login_main(int argc, char **argv);
int cache_main(int argc, char **argv);

#endif
