/* capsula inspect: what an image is and what it carries. */
#ifndef CAPSULA_INSPECT_H
#define CAPSULA_INSPECT_H

int inspect_main(int argc, char **argv);

#endif
